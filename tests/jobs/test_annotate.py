"""The annotate job: labelled versions, re-annotation, validation gates, Label Studio round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vigil.config.params import parse_params
from vigil.io.annotations import flag_sample, load_annotations
from vigil.io.ledger import read_events
from vigil.io.registry import file_at, files_at, list_versions, open_registry, read_manifest_at
from vigil.io.store import LocalStore
from vigil.jobs.annotate import annotate
from vigil.jobs.runtime import runtime_for

REPO = Path(__file__).resolve().parents[2]


def params(**annotate_overrides):
    import yaml

    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    doc["zoo"]["pairs_per_generator"] = 1
    doc["annotate"].update(annotate_overrides)
    return parse_params(doc)


@pytest.fixture(scope="module")
def ingested_template(tmp_path_factory) -> Path:
    """A workspace with one ingested dataset version of the zoo (12 clips), built once."""
    from vigil.jobs.crawl import resolved_sources, run_crawl
    from vigil.jobs.ingest import ingest

    root = tmp_path_factory.mktemp("annotate-template")
    store = LocalStore(root / "store")
    p = params()
    with resolved_sources(p, root) as sources:
        run_crawl(runtime_for(root, p, store), sources)
    assert ingest(runtime_for(root, p, store)).status == "published"
    return root


@pytest.fixture
def workspace(ingested_template, tmp_path) -> tuple[Path, LocalStore]:
    root = tmp_path / "ws"
    shutil.copytree(ingested_template, root, symlinks=True)
    return root, LocalStore(root / "store")


def test_synthetic_annotation_publishes_a_labelled_version_with_quality(workspace):
    root, store = workspace
    # when the newest dataset version is annotated with the default (synthetic) source
    report = annotate(runtime_for(root, params(), store))
    # then a labelled version carries the manifest, an annotation per clip and the quality report
    assert report.status == "published" and report.base_tag == "ds-0001" and report.version_tag == "ds-0002"
    assert report.selected == {"new": 12} and report.n_rejected == 0
    registry = open_registry(root / "registry", store)
    assert files_at(registry, "ds-0002") == ["annotations.parquet", "annotator_quality.json"]
    table = pd.read_parquet(file_at(registry, "ds-0002", "annotations.parquet"))
    manifest = read_manifest_at(registry, "ds-0002")
    assert sorted(table["sample_id"]) == sorted(manifest["sample_id"])
    assert table["compliant"].all() and table["label_agrees"].all()
    assert (table.loc[table["label"] == "fake", "n_evidence"] >= 1).all()
    # and on zoo data the synthetic annotator reproduces the ground truth (up to rendering precision)
    quality = json.loads(Path(file_at(registry, "ds-0002", "annotator_quality.json")).read_text())
    assert quality["label_accuracy"] == 1.0 and quality["type_accuracy"] == 1.0
    assert quality["temporal_iou"] > 0.9 and quality["box_iou"] > 0.9 and quality["artifact_recall"] == 1.0
    assert Path(report.quality_report).read_text().startswith("<!doctype html>")
    # and a second run changes nothing, nor does re-ingesting with nothing new crawled
    again = annotate(runtime_for(root, params(), store))
    assert again.status == "unchanged" and again.selected == {}
    from vigil.jobs.ingest import ingest

    reingested = ingest(runtime_for(root, params(), store))
    assert reingested.status == "unchanged" and reingested.version_tag == "ds-0001"
    assert [v.tag for v in list_versions(registry)] == ["ds-0001", "ds-0002"]
    assert [e.action for e in read_events(store)][-1] == "annotation.publish"


def test_reannotate_after_prompt_bump_touches_exactly_the_stale_samples(workspace):
    from vigil.annotate.synthetic import synthetic_annotation
    from vigil.io.annotations import write_annotation
    from vigil.jobs.ingest import crawled_items

    root, store = workspace
    annotate(runtime_for(root, params(prompt_version="p1"), store))
    # given three samples already re-done under the new prompt version p2
    truth = {i.sha256: i for i in crawled_items(store)}
    manifest = read_manifest_at(open_registry(root / "registry", store), "ds-0002")
    fresh = list(manifest["sample_id"][:3])
    for sid in fresh:
        row = manifest.set_index("sample_id").loc[sid]
        write_annotation(store, synthetic_annotation(sid, row["label"], truth[sid].artifacts, float(row["duration_s"]),
                                                     prompt_version="p2", taxonomy_version=1))
    before = {sid: len(v) for sid, v in load_annotations(store).items()}
    # when re-annotation runs under p2
    report = annotate(runtime_for(root, params(prompt_version="p2"), store), reannotate=True)
    # then exactly the other nine were redone, and nothing was overwritten
    after = {sid: len(v) for sid, v in load_annotations(store).items()}
    assert report.selected == {"stale": 9}
    assert {sid for sid in after if after[sid] > before[sid]} == set(manifest["sample_id"]) - set(fresh)
    assert all(after[sid] == before[sid] for sid in fresh)
    table = pd.read_parquet(file_at(open_registry(root / "registry", store), report.version_tag, "annotations.parquet"))
    assert set(table["prompt_version"]) == {"p2"}


def test_hard_examples_and_flags_are_reannotated(workspace, tmp_path):
    root, store = workspace
    annotate(runtime_for(root, params(), store))
    manifest = read_manifest_at(open_registry(root / "registry", store), "ds-0002")
    rows = list(manifest.itertuples())
    # given a model that got two clips wrong (one unparsable answer), and a person's flag on a third
    wrong = [rows[0], rows[1]]
    predictions = [{"video_id": f"{r.generator}/{r.sample_id}", "answer": "<answer>Real</answer>" if r.label == "fake"
                    else "<answer>Fake</answer>"} for r in wrong[:1]]
    predictions.append({"sample_id": wrong[1].sample_id, "answer": "garbage"})
    predictions += [{"sample_id": r.sample_id, "pred": r.label} for r in rows[3:]]
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions))
    flag_sample(store, rows[2].sample_id, by="auditor@example.org", reason="box misses the object")
    # when re-annotating with those predictions
    report = annotate(runtime_for(root, params(), store), reannotate=True, predictions=path)
    # then exactly those three are redone, the flagged one carrying who flagged it
    assert report.selected == {"flagged": 1, "hard": 2}
    flagged = load_annotations(store, [rows[2].sample_id])[rows[2].sample_id]
    assert flagged[-1].flagged_by == "auditor@example.org"
    # and the flag is answered: another run does not redo it
    assert annotate(runtime_for(root, params(), store), reannotate=True).selected == {}


def test_failing_annotation_checks_quarantine_and_publish_nothing(workspace):
    root, store = workspace
    # when the bar for evidence per fake is set higher than any annotation meets
    report = annotate(runtime_for(root, params(min_evidence_per_fake=9.0), store))
    # then nothing is published, the batch is quarantined with the failing rule, and the ledger says so
    assert report.status == "rejected" and report.version_tag is None
    assert any("_fake_evidence" in name for name in report.failed_expectations)
    assert [v.tag for v in list_versions(open_registry(root / "registry", store))] == ["ds-0001"]
    assert any(k.endswith("reason.json") for k in store.list_keys("quarantine/annotations/"))
    assert read_events(store)[-1].action == "annotation.reject"


@pytest.mark.slow
def test_label_studio_export_and_reimport_through_the_cli(workspace, tmp_path):
    root, store = workspace
    annotate(runtime_for(root, params(), store))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env.update(VIGIL_WORKSPACE=str(root), VIGIL_STORE_ROOT=str(root / "store"))
    pfile = tmp_path / "params.yaml"
    import yaml

    pfile.write_text(yaml.safe_dump(params().model_dump(mode="json")))
    env["VIGIL_PARAMS_FILE"] = str(pfile)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "vigil.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    # when a labelled version is exported for Label Studio
    tasks_path, config_path = tmp_path / "tasks.json", tmp_path / "config.xml"
    exported = cli("labels", "export-labelstudio", str(tasks_path), "--config-path", str(config_path))
    assert exported.returncode == 0, exported.stderr
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 12 and all(t["predictions"][0]["result"] for t in tasks)
    assert "<View>" in config_path.read_text()
    # and a person submits every pre-annotation unchanged (what Label Studio then exports)
    export = [{**t, "id": i, "annotations": [{"id": 100 + i, "result": t["predictions"][0]["result"],
                                               "completed_by": {"id": 7, "email": "ann@example.org"},
                                               "created_at": "2026-11-20T10:00:00.000000Z",
                                               "updated_at": "2026-11-20T10:05:00.000000Z", "was_cancelled": False}]}
              for i, t in enumerate(tasks)]
    export_path = tmp_path / "export.json"
    export_path.write_text(json.dumps(export))
    imported = cli("labels", "import-labelstudio", str(export_path))
    assert imported.returncode == 0, imported.stderr
    assert "imported 12 human annotation(s)" in imported.stdout
    # then the next labelled version carries the human annotations, with who and when
    report = annotate(runtime_for(root, params(), store))
    table = pd.read_parquet(file_at(open_registry(root / "registry", store), report.version_tag, "annotations.parquet"))
    assert set(table["kind"]) == {"human"} and set(table["annotator"]) == {"ann@example.org"}
    assert table["label_agrees"].all()


@pytest.mark.slow
def test_teacher_url_annotates_through_an_openai_compatible_server(workspace, tmp_path):
    import yaml

    from tests.support.teacher_server import COMPLETION_TOKENS, PROMPT_TOKENS, Action, teacher_server

    root, store = workspace
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(params(cost_per_1k_prompt_tokens=0.5, max_concurrency=3).model_dump(mode="json")))
    with teacher_server() as server:
        server.push(Action("malformed"))  # the first reply breaks the grammar: repaired, not lost
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
        env.update(VIGIL_WORKSPACE=str(root), VIGIL_STORE_ROOT=str(root / "store"), VIGIL_PARAMS_FILE=str(pfile),
                   VIGIL_TEACHER_URL=server.base_url, VIGIL_TEACHER_MODEL="teacher-test",
                   VIGIL_TEACHER_API_KEY="sk-test-secret-123")
        # when annotation runs with VIGIL_TEACHER_URL set
        result = subprocess.run([sys.executable, "-m", "vigil.cli", "annotate"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        calls = list(server.calls)
    # then every clip went to the teacher, label-conditioned, and a labelled version was published
    assert result.returncode == 0, result.stdout + result.stderr
    assert "teacher (teacher-test)" in result.stdout and "12 accepted" in result.stdout
    assert len(calls) == 13  # 12 clips + 1 repair
    assert "sk-test-secret-123" not in result.stdout + result.stderr
    registry = open_registry(root / "registry", store)
    table = pd.read_parquet(file_at(registry, list_versions(registry)[-1].tag, "annotations.parquet"))
    assert set(table["kind"]) == {"teacher"} and set(table["annotator"]) == {"teacher-test"}
    # and tokens and cost are recorded per annotation
    records = [a for v in load_annotations(store).values() for a in v]
    assert sum(a.usage.prompt_tokens for a in records) == 13 * PROMPT_TOKENS
    assert sum(a.usage.completion_tokens for a in records) == 13 * COMPLETION_TOKENS
    assert all(a.usage.cost_usd > 0 for a in records)


def test_switching_annotator_makes_machine_annotations_stale_but_keeps_human_ones(workspace):
    from vigil.core.annotation import Provenance
    from vigil.io.annotations import write_annotation
    from vigil.jobs.annotate import Versions, select_samples

    root, store = workspace
    annotate(runtime_for(root, params(), store))
    manifest = read_manifest_at(open_registry(root / "registry", store), "ds-0002")
    existing = load_annotations(store)
    # given one sample re-annotated by a person
    human_id = manifest["sample_id"].iloc[0]
    human = existing[human_id][-1].model_copy(update={"provenance": Provenance(
        kind="human", annotator="ann@example.org", prompt_version=existing[human_id][-1].provenance.prompt_version,
        taxonomy_version=1)})
    write_annotation(store, human)
    existing = load_annotations(store)
    # when the pipeline switches to a teacher model
    teacher = Versions("teacher-7b", "teacher", existing[human_id][0].provenance.prompt_version, 1, "1")
    selected = select_samples(manifest, existing, teacher, reannotate=True)
    # then every sample but the human-annotated one is stale
    assert selected == {sid: "stale" for sid in manifest["sample_id"] if sid != human_id}
    assert select_samples(manifest, existing, teacher, reannotate=False) == {}


# ---- one annotation run per workspace -------------------------------------------------------------

_HOLD_LOCK = """
import sys, time
from vigil.io.locks import workspace_lock
with workspace_lock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def annotate_lock_held_elsewhere(tmp_path):
    """Another process holds the workspace's annotate lock; yields (workspace, holder pid)."""
    root = tmp_path / "busy-ws"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(root), "annotate"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        yield root, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_annotate_and_label_studio_are_refused_while_another_run_holds_the_workspace(annotate_lock_held_elsewhere,
                                                                                   tmp_path):
    from vigil.io.locks import WorkspaceBusy
    from vigil.jobs.labelstudio import export_version, import_export

    root, pid = annotate_lock_held_elsewhere
    rt = runtime_for(root, params())
    export = tmp_path / "export.json"
    export.write_text("[]")
    # when the annotate job, a Label Studio import or an export starts, each is refused naming the holder
    for start in (lambda: annotate(rt), lambda: import_export(rt, export),
                  lambda: export_version(rt, tmp_path / "tasks.json")):
        with pytest.raises(WorkspaceBusy, match=f"pid {pid}") as refused:
            start()
        assert refused.value.exit_code == 7 and refused.value.holder.pid == pid
    # and none of them wrote anything
    assert [e.action for e in read_events(rt.store)] == [] and not (tmp_path / "tasks.json").exists()


@pytest.mark.parametrize("args", [["annotate"], ["labels", "import-labelstudio", "EXPORT"],
                                  ["labels", "export-labelstudio", "tasks.json"]], ids=lambda a: " ".join(a[:2]))
def test_the_cli_refuses_a_second_annotation_run_with_exit_7_and_no_traceback(args, annotate_lock_held_elsewhere,
                                                                              tmp_path):
    root, pid = annotate_lock_held_elsewhere
    export = tmp_path / "export.json"
    export.write_text("[]")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "PREFECT_"))}
    env["VIGIL_WORKSPACE"] = str(root)
    result = subprocess.run([sys.executable, "-m", "vigil.cli", *[str(export) if a == "EXPORT" else a for a in args]],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    text = result.stdout + result.stderr
    assert result.returncode == 7, text
    assert "Traceback" not in text and "conflict" in text and f"pid {pid}" in " ".join(text.split()), text


def test_a_published_run_leaves_no_staging_folder_behind(workspace):
    root, store = workspace
    # given what a killed run left in the staging area
    leftover = root / "annotate" / "batches" / "0123456789abcdef"
    leftover.mkdir(parents=True)
    (leftover / "annotations.parquet").write_text("not a parquet file")
    # when the annotate job publishes
    assert annotate(runtime_for(root, params(), store)).status == "published"
    # then it staged in a folder of its own and removed it; the dead run's folder is untouched
    assert sorted(p.name for p in (root / "annotate" / "batches").iterdir()) == ["0123456789abcdef"]


# ---- fakes without ground truth: teacher, else label-only ------------------------------------------

def _strip_ground_truth(store: LocalStore, n: int) -> list[str]:
    """Make ``n`` crawled fakes look like clips from a real generator: a label, no artifacts."""
    records = {key: store.get_json(key) for key in store.list_keys("provenance/") if key.endswith(".json")}
    fakes = sorted({r["sha256"] for r in records.values() if r.get("label") == "fake" and r.get("media_key")})[:n]
    for key, record in records.items():
        if record["sha256"] in fakes:
            store.put_json(key, record | {"artifacts": [], "mask_key": None})
    return fakes


def test_fakes_without_ground_truth_get_label_only_annotations_counted_apart(workspace):
    from vigil.core.grammar import check

    root, store = workspace
    # given three crawled fakes with a label but no ground-truth artifacts, and no teacher
    stripped = _strip_ground_truth(store, 3)
    # when the version is annotated
    report = annotate(runtime_for(root, params(), store))
    # then they are kept as label-only annotations (nothing rejected), counted apart from the grounded ones
    assert report.status == "published", report.validation_summary
    assert (report.n_grounded, report.n_label_only, report.n_rejected, report.n_queued_for_humans) == (9, 3, 0, 3)
    assert report.n_accepted == 12 and "9 grounded, 3 label-only" in report.summary()
    assert "3 queued for human grounding" in report.summary()
    table = pd.read_parquet(file_at(open_registry(root / "registry", store), report.version_tag,
                                    "annotations.parquet")).set_index("sample_id")
    assert set(table.index[table["kind"] == "label_only"]) == set(stripped)
    rows = table.loc[stripped]
    assert (rows["label"] == "fake").all() and (rows["n_evidence"] == 0).all() and rows["label_agrees"].all()
    assert all(check(text).ok and check(text).label == "fake" for text in rows["explanation"])
    # and the real clips kept their normal-segment explanations
    reals = table[table["label"] == "real"]
    assert set(reals["kind"]) == {"synthetic"} and all(check(t).evidence for t in reals["explanation"])
    # and re-annotating without a teacher has nothing better to offer: nothing is redone
    again = annotate(runtime_for(root, params(), store), reannotate=True)
    assert again.selected == {} and again.status == "unchanged"


def test_a_person_grounding_a_label_only_clip_overrides_it(workspace, tmp_path):
    from vigil.jobs.labelstudio import export_version, import_export

    root, store = workspace
    stripped = _strip_ground_truth(store, 2)
    annotate(runtime_for(root, params(), store))
    rt = runtime_for(root, params(), store)
    # when the labelled version is exported for Label Studio
    report = export_version(rt, tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    # then the two label-only clips are the first tasks, flagged, with the verdict alone
    assert report.n_needs_grounding == 2 and report.n_tasks == 12
    assert {t["data"]["sample_id"] for t in tasks[:2]} == set(stripped)
    assert [t["data"]["needs_grounding"] for t in tasks] == [True] * 2 + [False] * 10
    # and when a person grounds the first one (a box and a span over frames 2-6) and it is imported
    task = tasks[0]
    grounded = task["predictions"][0]["result"] + [
        {"id": "b1", "from_name": "box", "to_name": "video", "type": "videorectangle",
         "value": {"framesCount": 8, "duration": 2.0, "labels": ["Shape Distortion"], "sequence": [
             {"frame": 2, "time": 0.25, "x": 10.0, "y": 10.0, "width": 40.0, "height": 40.0, "rotation": 0,
              "enabled": True},
             {"frame": 6, "time": 1.25, "x": 10.0, "y": 10.0, "width": 40.0, "height": 40.0, "rotation": 0,
              "enabled": False}]}},
        {"id": "s1", "from_name": "span", "to_name": "video", "type": "timelinelabels",
         "value": {"ranges": [{"start": 2, "end": 6}], "timelinelabels": ["Shape Distortion"]}}]
    submitted = {"id": 1, "result": grounded, "completed_by": {"id": 2, "email": "cy@x.org"},
                 "created_at": "2026-11-21T10:00:00Z", "was_cancelled": False}
    export = [{**task, "id": 1, "annotations": [submitted]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    assert import_export(rt, tmp_path / "export.json").n_imported == 1
    # then the next labelled version carries the person's grounded annotation for it; one clip still waits
    after = annotate(runtime_for(root, params(), store))
    table = pd.read_parquet(file_at(open_registry(root / "registry", store), after.version_tag,
                                    "annotations.parquet")).set_index("sample_id")
    row = table.loc[task["data"]["sample_id"]]
    assert row["kind"] == "human" and row["n_evidence"] == 1 and list(row["artifact_types"]) == ["Shape Distortion"]
    assert after.n_queued_for_humans == 1 and (table["kind"] == "label_only").sum() == 1


def test_with_a_teacher_fakes_without_ground_truth_are_grounded_by_it(workspace):
    from tests.support.teacher_server import BAD, teacher_server
    from vigil.jobs.annotate import TeacherEndpoint

    root, store = workspace
    # given two fakes without ground truth, and a teacher
    stripped = _strip_ground_truth(store, 2)
    with teacher_server() as server:
        # when the version is annotated with it
        report = annotate(runtime_for(root, params(), store), teacher=TeacherEndpoint(server.base_url, "teacher-test"))
        # then every clip went to the teacher under its own label, and the fakes without ground truth
        # are teacher annotations with grounded evidence: nothing label-only, nothing rejected
        assert report.status == "published", report.validation_summary
        assert sorted(c.label for c in server.calls) == ["fake"] * 6 + ["real"] * 6
        assert (report.n_grounded, report.n_label_only, report.n_rejected) == (12, 0, 0)
        table = pd.read_parquet(file_at(open_registry(root / "registry", store), report.version_tag,
                                        "annotations.parquet")).set_index("sample_id")
        assert set(table.loc[stripped, "kind"]) == {"teacher"} and (table.loc[stripped, "n_evidence"] >= 1).all()
        # and when another teacher breaks the grammar on every clip, through every repair
        for _ in range(12 * 3):
            server.push(BAD)
        again = annotate(runtime_for(root, params(), store), teacher=TeacherEndpoint(server.base_url, "teacher-2"),
                         reannotate=True)
    # then every clip is rejected, and each fake also keeps its verdict as a label-only record; the
    # version still carries the first teacher's grounded annotations, preferred over label-only ones
    assert (again.n_rejected, again.n_label_only, again.n_grounded, again.n_queued_for_humans) == (12, 6, 0, 0)
    kinds = {a.provenance.kind for v in load_annotations(store, stripped).values() for a in v}
    assert kinds == {"teacher", "label_only"}
