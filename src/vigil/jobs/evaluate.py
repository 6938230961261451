"""The evaluate and gate jobs.

``evaluate``: a model (a registered version, the ``champion`` alias, or a model folder) on an
evaluation set (``fixed``: train.heldout's zoo clips; ``zoo:SEED``; a dataset version's split such as
``latest`` or ``ds-0002:test``; or an evaluation-set folder) → predictions in Skyra's layout and the
metrics (vigil.core.metrics), cached per (model, set, settings) under the workspace and copied to the
store, with a ledger event.

``gate``: the candidate and the champion on the fixed set and the recent slice, the rules of
params.yaml's ``gate`` (vigil.core.gate), a decision record in the store and the ledger, the
candidate's record updated, the report for people, the metrics repository for ``dvc metrics diff``,
and, on a pass, the ``champion`` alias moved to the candidate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vigil.config.errors import NotFoundError
from vigil.config.params import ModelProfile
from vigil.core.evaluation import Prediction, join_truth, read_predictions, write_predictions
from vigil.core.hashing import sha256_file, sha256_json
from vigil.core.model_version import ModelVersion
from vigil.core.progress import ProgressCallback
from vigil.evaluate.evalsets import EvalSet, dataset_evalset, open_evalset, zoo_evalset
from vigil.jobs.runtime import Runtime

log = logging.getLogger(__name__)

CHAMPION = "champion"
SETS = ("fixed", "recent")


class EvaluateError(NotFoundError):
    """The model or evaluation set cannot be resolved; the message says what to pass instead."""


@dataclass(frozen=True)
class ModelRef:
    name: str  # the version id, or the folder's name + hash
    model_dir: Path
    profile: ModelProfile
    version: ModelVersion | None


@dataclass(frozen=True)
class Evaluation:
    model: str
    evalset: EvalSet
    predictions_path: Path
    metrics_path: Path
    metrics: dict[str, Any]
    cached: bool

    @property
    def predictions(self) -> list[Prediction]:
        return read_predictions(self.predictions_path)


# ------------------------------------------------------------------------------------ resolve

def _version_profile(version: ModelVersion) -> ModelProfile:
    model = version.params.get("model", {})
    try:
        # JSON mode: the record holds JSON (lists where the strict model wants tuples)
        return ModelProfile.model_validate_json(json.dumps(model["profiles"][version.profile]))
    except (KeyError, ValueError) as exc:
        raise EvaluateError(f"{version.version_id}: its record has no usable '{version.profile}' profile ({exc})") from None


def resolve_model(rt: Runtime, model: str) -> ModelRef:
    """``champion``, a model version id (``mv-…``), or a model folder (evaluated with the active profile)."""
    from vigil.io.models import fetch_model, read_alias, read_model_version, record_key

    if model == CHAMPION:
        holder = read_alias(rt.store, CHAMPION)
        if holder is None:
            raise EvaluateError("no champion yet: the first model to pass the gate becomes it (`vigil gate mv-…`)")
        model = holder
    if model.startswith("mv-"):
        if not rt.store.exists(record_key(model)):
            raise EvaluateError(f"no model version {model} in the store: `vigil train` registers candidates; "
                                "`vigil audit log` lists model events")
        version = read_model_version(rt.store, model)
        folder = fetch_model(rt.store, version, rt.workspace / "models" / model)
        return ModelRef(model, folder, _version_profile(version), version)
    folder = Path(model)
    if not (folder / "config.json").is_file():
        raise EvaluateError(f"{model!r} is neither a model version id (mv-…), 'champion', nor a model folder "
                            "with a config.json")
    files = {p.name: sha256_file(p) for p in sorted(folder.glob("*.safetensors"))}
    return ModelRef(f"{folder.name}-{sha256_json(files)[:8]}", folder, rt.params.model.active, None)


def resolve_evalset(rt: Runtime, dataset: str, *, progress: ProgressCallback | None = None) -> EvalSet:
    """``fixed``, ``zoo:SEED``, ``latest`` / ``ds-NNNN`` (optionally ``:split``), or an evaluation-set folder."""
    root = rt.workspace / "evalsets"
    heldout = rt.params.train.heldout
    if dataset == "fixed":
        dataset = f"zoo:{heldout.zoo_seed}"
    if dataset.startswith("zoo:"):
        try:
            seed = int(dataset[4:])
        except ValueError:
            raise EvaluateError(f"{dataset!r}: expected zoo:SEED with an integer seed") from None
        trained = set(rt.params.train.pretrain.zoo_seeds) | {rt.params.zoo.seed}
        if seed in trained:
            raise EvaluateError(f"zoo seed {seed} is trained on (gallery or pretrain seeds {sorted(trained)}): "
                                f"pick another, e.g. the held-out seed {heldout.zoo_seed}")
        if progress:
            progress("rendering the zoo evaluation set", 0, None)
        return zoo_evalset(rt.params.zoo, seed, heldout.pairs_per_generator, root,
                           workers=rt.params.train.pretrain.render_workers)
    if dataset == "latest" or dataset.startswith("ds-"):
        from vigil.train.prepare import prepare

        tag, _, split = dataset.partition(":")
        split = split or rt.params.evaluate.recent_split
        if split not in ("train", "val", "test"):
            raise EvaluateError(f"{dataset!r}: the split must be train, val or test")
        prepared = root / "prepared" / tag
        prepare(rt.workspace, rt.store, tag, prepared)
        return dataset_evalset(prepared, split, root / "datasets")
    folder = Path(dataset)
    if folder.is_dir():
        return open_evalset(folder)
    raise EvaluateError(f"{dataset!r} is not an evaluation set: pass 'fixed', 'zoo:SEED', 'latest', a dataset "
                        "version such as ds-0002 (or ds-0002:test), or an evaluation-set folder")


# ----------------------------------------------------------------------------------- evaluate

def _store_prefix(model: str, evalset_id: str, key: str) -> str:
    return f"evaluations/{model}/{evalset_id}-{key}"


def evaluate_model(rt: Runtime, model: ModelRef, evalset: EvalSet, *, server: str | None = None,
                   served_model: str | None = None, progress: ProgressCallback | None = None) -> Evaluation:
    """Predictions and metrics of ``model`` on ``evalset`` (offline runs are cached by model, set and settings)."""
    from vigil.core.metrics.summary import evaluation_metrics
    from vigil.evaluate.predict import predict_offline, predict_server

    settings = rt.params.evaluate
    key = sha256_json([evalset.evalset_id, settings.max_new_tokens, model.profile.model_dump(mode="json"),
                       "server" if server else "offline"])[:8]
    folder = rt.workspace / "evaluations" / model.name / f"{evalset.evalset_id}-{key}"
    predictions_path, metrics_path = folder / "predictions.json", folder / "metrics.json"
    if server is None and predictions_path.is_file() and metrics_path.is_file():
        log.info("%s on %s: cached (%s)", model.name, evalset.evalset_id, folder)
        return Evaluation(model.name, evalset, predictions_path, metrics_path, json.loads(metrics_path.read_text()),
                          cached=True)
    report = (lambda done, total: progress(f"evaluating {model.name} on {evalset.evalset_id}", done, total)) \
        if progress else None
    if server:
        predictions = predict_server(server, served_model or model.name, evalset, model.profile, model_name=model.name,
                                     max_new_tokens=settings.max_new_tokens, on_batch=report)
    else:
        from vigil.train.threads import pin_threads

        pin_threads(rt.params.train.threads)  # the model runs in this process: a bounded team (see train.threads)
        predictions = predict_offline(model.model_dir, evalset, model.profile, model_name=model.name,
                                      batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens,
                                      on_batch=report)
    metrics = evaluation_metrics(predictions, list(evalset.clips), evalset.path)
    metrics["evalset"] = {"id": evalset.evalset_id, "kind": evalset.kind, "source": evalset.source}
    metrics["model"] = model.name
    write_predictions(predictions, predictions_path)
    metrics_path.write_text(json.dumps(metrics, indent=1, sort_keys=True))
    prefix = _store_prefix(model.name, evalset.evalset_id, key)
    rt.store.put_file(f"{prefix}/predictions.json", predictions_path, content_type="application/json")
    rt.store.put_file(f"{prefix}/metrics.json", metrics_path, content_type="application/json")
    rt.ledger.append("model.evaluated",
                     inputs={"model": model.name, "evalset": evalset.evalset_id, "evalset_source": evalset.source,
                             "path": "server" if server else "offline"},
                     outputs={"predictions": rt.store.uri(f"{prefix}/predictions.json"),
                              "predictions_sha256": sha256_file(predictions_path),
                              "metrics_sha256": sha256_file(metrics_path)},
                     params={"max_new_tokens": settings.max_new_tokens})
    return Evaluation(model.name, evalset, predictions_path, metrics_path, metrics, cached=False)


def evaluate(rt: Runtime, model: str, dataset: str, *, server: str | None = None, served_model: str | None = None,
             progress: ProgressCallback | None = None) -> Evaluation:
    """``vigil evaluate MODEL DATASET``."""
    return evaluate_model(rt, resolve_model(rt, model), resolve_evalset(rt, dataset, progress=progress),
                          server=server, served_model=served_model, progress=progress)


# --------------------------------------------------------------------------------------- gate
# The gate is six steps, each a function the evaluate flow runs as its own task and `gate` chains
# for the CLI and tests: evaluate both models → decide → record → report → metrics repository →
# promote. Steps hand each other small records of names and paths, never predictions or models.

@dataclass(frozen=True)
class EvaluationRef:
    """Where one finished evaluation lies (its evaluation set folder, predictions and metrics)."""

    model: str
    evalset_dir: str
    predictions_path: str
    metrics_path: str

    @classmethod
    def of(cls, ev: Evaluation) -> EvaluationRef:
        return cls(ev.model, str(ev.evalset.path), str(ev.predictions_path), str(ev.metrics_path))

    def load(self) -> Evaluation:
        metrics_path = Path(self.metrics_path)
        return Evaluation(self.model, open_evalset(self.evalset_dir), Path(self.predictions_path), metrics_path,
                          json.loads(metrics_path.read_text()), cached=True)


@dataclass(frozen=True)
class GateEvaluations:
    """Step 1's result: who is judged against whom, and their evaluations on each gate set."""

    candidate: str
    champion: str | None
    notes: tuple[str, ...]
    candidate_runs: dict[str, EvaluationRef]
    champion_runs: dict[str, EvaluationRef] | None

    def loaded(self) -> tuple[dict[str, Evaluation], dict[str, Evaluation] | None]:
        cand = {name: ref.load() for name, ref in self.candidate_runs.items()}
        champ = {name: ref.load() for name, ref in self.champion_runs.items()} if self.champion_runs else None
        return cand, champ


@dataclass(frozen=True)
class GateRecord:
    """Step 3's result: the decision as stored, and its hash (what the alias move and the ledger cite)."""

    decision_id: str
    verdict: str
    record_uri: str
    record_sha256: str


@dataclass(frozen=True)
class GateOutcome:
    decision: Any  # vigil.core.gate.GateDecision
    record_uri: str
    report_html: Path
    report_md: Path
    metrics_diff: str  # the dvc command that compares the two models
    promoted: bool


def _evaluation_ref(ev: Evaluation) -> dict[str, Any]:
    return {"evalset": ev.evalset.evalset_id, "source": ev.evalset.source, "clips": len(ev.evalset.clips),
            "predictions_sha256": sha256_file(ev.predictions_path), "metrics_sha256": sha256_file(ev.metrics_path)}


def evaluate_for_gate(rt: Runtime, candidate: str, *, champion: str | None = None,
                      progress: ProgressCallback | None = None) -> GateEvaluations:
    """Step 1: the candidate and the champion (default: the champion alias) on the fixed set and the recent slice."""
    from vigil.io.models import read_alias

    cand = resolve_model(rt, candidate)
    if cand.version is None:
        raise EvaluateError(f"{candidate!r}: the gate judges registered model versions (mv-…); "
                            "`vigil evaluate` takes folders")
    notes: list[str] = []
    champion_id = champion or read_alias(rt.store, CHAMPION)
    if champion_id == cand.name:
        notes.append(f"{cand.name} is already the champion: judged on minimum levels alone")
        champion_id = None
    champ = resolve_model(rt, champion_id) if champion_id else None
    evalsets = {"fixed": resolve_evalset(rt, "fixed", progress=progress),
                "recent": resolve_evalset(rt, "latest", progress=progress)}
    cand_runs = {name: EvaluationRef.of(evaluate_model(rt, cand, es, progress=progress)) for name, es in evalsets.items()}
    champ_runs = ({name: EvaluationRef.of(evaluate_model(rt, champ, es, progress=progress))
                   for name, es in evalsets.items()} if champ else None)
    return GateEvaluations(cand.name, champ.name if champ else None, tuple(notes), cand_runs, champ_runs)


def decide_gate(rt: Runtime, runs: GateEvaluations):
    """Step 2: the gate's rules (params.yaml ``gate``) on the evaluations; a pure judgement, nothing written."""
    from vigil.core.gate import decide
    from vigil.io.ledger import code_revision

    cand_ev, champ_ev = runs.loaded()
    evaluations = {name: {"candidate": _evaluation_ref(cand_ev[name]),
                          **({"champion": _evaluation_ref(champ_ev[name])} if champ_ev else {})}
                   for name in cand_ev}
    return decide(runs.candidate, {n: ev.predictions for n, ev in cand_ev.items()}, rt.params.gate,
                  champion_id=runs.champion,
                  champion={n: ev.predictions for n, ev in champ_ev.items()} if champ_ev else None,
                  evaluations=evaluations, notes=list(runs.notes), code_rev=code_revision(),
                  created_at=datetime.now(timezone.utc).isoformat())


def record_decision(rt: Runtime, decision) -> GateRecord:
    """Step 3: the decision record in the store, its ledger event, and the verdict on the candidate's record."""
    from vigil.io.models import record_gate

    record_key = f"gates/{decision.decision_id}.json"
    rt.store.put_json(record_key, decision.model_dump(mode="json"))
    record_sha = sha256_json(decision.model_dump(mode="json"))
    rt.ledger.append("model.gate",
                     inputs={"candidate": decision.candidate, "champion": decision.champion,
                             "evaluations": {n: {k: v["predictions_sha256"] for k, v in e.items()}
                                             for n, e in decision.evaluations.items()}},
                     outputs={"decision": decision.decision_id, "verdict": decision.verdict,
                              "failed": list(decision.failed), "record": rt.store.uri(record_key),
                              "record_sha256": record_sha},
                     params={"gate": rt.params.gate.model_dump(mode="json")})
    record_gate(rt.store, decision.candidate, {"decision": decision.decision_id, "verdict": decision.verdict,
                                               "champion": decision.champion, "failed": list(decision.failed),
                                               "record": rt.store.uri(record_key), "record_sha256": record_sha})
    return GateRecord(decision.decision_id, decision.verdict, rt.store.uri(record_key), record_sha)


def report_gate(rt: Runtime, runs: GateEvaluations, decision) -> tuple[Path, Path]:
    """Step 4: the report for people (HTML and its Markdown twin), in the workspace and the store."""
    from vigil.core.gate import generator_intervals
    from vigil.reports.gate import ReportExample, pick_examples, write_gate_report

    cand_ev, champ_ev = runs.loaded()
    out_dir = rt.workspace / "reports" / "gates" / decision.decision_id
    cand_preds = {n: ev.predictions for n, ev in cand_ev.items()}  # each predictions file read once
    metrics = {n: {"candidate": cand_ev[n].metrics, "champion": champ_ev[n].metrics if champ_ev else None}
               for n in cand_ev}
    intervals = {n: {"candidate": generator_intervals(cand_preds[n], rt.params.gate),
                     "champion": generator_intervals(champ_ev[n].predictions, rt.params.gate) if champ_ev else None}
                 for n in cand_ev}
    examples = []
    per_set = max(1, rt.params.evaluate.report_examples // len(cand_ev)) if rt.params.evaluate.report_examples else 0
    for name, ev in cand_ev.items():
        predictions = cand_preds[name]
        if per_set and predictions:
            for pred, clip in pick_examples(join_truth(predictions, ev.evalset.clips), per_set):
                examples.append(ReportExample(set=name, prediction=pred, clip=clip, frames_dir=ev.evalset.frames_dir(clip)))
    html, md = write_gate_report(decision, metrics, intervals, examples, out_dir)
    for path in (html, md):
        rt.store.put_file(f"reports/gates/{decision.decision_id}/{path.name}", path,
                          content_type="text/html" if path.suffix == ".html" else "text/markdown")
    return html, md


def compare_metrics(rt: Runtime, runs: GateEvaluations, decision_id: str) -> str:
    """Step 5: both models' metrics committed to the metrics repository; returns the `dvc metrics diff` command."""
    from vigil.io.metrics_repo import commit_metrics, open_metrics_repo

    cand_ev, champ_ev = runs.loaded()
    repo = open_metrics_repo(rt.workspace / "metrics-repo")
    if champ_ev:
        commit_metrics(repo, {n: ev.metrics for n, ev in champ_ev.items()}, tag=f"{decision_id}-champion",
                       message=f"{decision_id}: champion {runs.champion}")
    commit_metrics(repo, {n: ev.metrics for n, ev in cand_ev.items()}, tag=f"{decision_id}-candidate",
                   message=f"{decision_id}: candidate {runs.candidate}")
    return (f"cd {repo} && dvc metrics diff {decision_id}-champion {decision_id}-candidate"
            if champ_ev else f"cd {repo} && dvc metrics show")


def promote_on_pass(rt: Runtime, candidate: str, record: GateRecord) -> bool:
    """Step 6: on a pass, the champion alias moves to the candidate (with the decision as its reason)."""
    from vigil.io.locks import workspace_lock
    from vigil.io.models import set_alias

    if record.verdict != "pass":
        return False
    with workspace_lock(rt.workspace, "promote"):
        return set_alias(rt.store, rt.ledger, CHAMPION, candidate,
                         reason={"decision": record.decision_id, "record_sha256": record.record_sha256})


def gate(rt: Runtime, candidate: str, *, champion: str | None = None, promote: bool = True,
         progress: ProgressCallback | None = None) -> GateOutcome:
    """Judge ``candidate`` against ``champion`` (default: the champion alias) and record the decision:
    the six steps above in order, in this process."""
    runs = evaluate_for_gate(rt, candidate, champion=champion, progress=progress)
    decision = decide_gate(rt, runs)
    record = record_decision(rt, decision)
    html, md = report_gate(rt, runs, decision)
    diff = compare_metrics(rt, runs, decision.decision_id)
    promoted = promote_on_pass(rt, runs.candidate, record) if promote else False
    return GateOutcome(decision, record.record_uri, html, md, diff, promoted)
