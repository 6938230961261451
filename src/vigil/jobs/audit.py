"""``vigil audit verify``: the ledger's hash chain, then the registry and the store checked against it.

The chain (:func:`vigil.io.ledger.verify_ledger`) proves no event was rewritten; it cannot see a
thing that was made without an event, or an event whose thing has gone. DESIGN.md asks verify to
cross-check the registry and the store as well, so this job also names every orphan:

* a dataset version tag in the data registry with no event that published it (``untracked_tag``),
  or one that points at another commit than its event recorded (``tag_moved``);
* a raw clip in the store that no ``crawl.run`` or ``crawl.reconcile`` event lists as stored
  (``untracked_clip``);
* a model record with no event that registered it (``untracked_model``), or an alias that points at
  a model version without a record (``dangling_alias``);
* and conversely, an event naming a tag, a clip or a model version that no longer exists
  (``missing_tag``, ``missing_clip``, ``missing_model``).

Every problem is an error except the warnings: a lagging ledger head (the next append repairs it) and
a workspace without a data registry (an auditor's machine pointed at the store: the tag checks are
skipped, ``no_registry``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

from vigil.core.model_version import ModelVersion
from vigil.io.git import run_git
from vigil.io.ledger import WARNING_KINDS, LedgerEvent, LedgerReport, event_key, read_events, verify_ledger
from vigil.io.models import MODELS_PREFIX, alias_key
from vigil.io.store import ObjectStore
from vigil.jobs.crawl import RAW_PREFIX, STORED_BY, raw_clips
from vigil.jobs.runtime import Runtime

ALIASES_PREFIX = f"{MODELS_PREFIX}/aliases/"
#: The events whose ``outputs.stored`` lists the raw clips a crawl put into the store.
CRAWL_ACTIONS = frozenset(STORED_BY)
#: The events that register a model version: ``model.<kind>`` (see :func:`vigil.io.models.publish_model_version`).
REGISTER_ACTIONS = frozenset(f"model.{kind}" for kind in get_args(ModelVersion.model_fields["kind"].annotation))
AUDIT_WARNING_KINDS = WARNING_KINDS | {"no_registry"}

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class AuditProblem:
    """One thing wrong: what kind, which object (tag, store key, model version, event key), what to do."""

    kind: str
    subject: str
    detail: str

    @property
    def severity(self) -> Severity:
        return "warning" if self.kind in AUDIT_WARNING_KINDS else "error"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail, "severity": self.severity}

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    """The chain's report and the cross-checks' orphans, with what was counted."""

    ledger: LedgerReport
    orphans: tuple[AuditProblem, ...]
    n_tags: int
    n_clips: int
    n_models: int

    @property
    def chain_problems(self) -> tuple[AuditProblem, ...]:
        return tuple(AuditProblem(p.kind, p.key, p.detail) for p in self.ledger.problems)

    @property
    def problems(self) -> tuple[AuditProblem, ...]:
        return self.chain_problems + self.orphans

    @property
    def errors(self) -> tuple[AuditProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[AuditProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def tampered(self) -> bool:
        """The chain itself is broken: an event edited, deleted, inserted, moved, unreadable or stray."""
        return not self.ledger.ok

    @property
    def ok(self) -> bool:
        """Nothing but warnings."""
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "tampered": self.tampered, "n_events": self.ledger.n_events, "n_tags": self.n_tags,
                "n_clips": self.n_clips, "n_models": self.n_models,
                "problems": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class _Claim:
    """An event's claim that it made something: the thing's name, and the event that says so."""

    name: str
    event: LedgerEvent

    @property
    def where(self) -> str:
        return f"{event_key(self.event.seq)} ({self.event.action})"


def audit_verify(rt: Runtime) -> AuditReport:
    """The chain check and every cross-check, for ``vigil audit verify``."""
    report = verify_ledger(rt.ledger.store)
    events = read_events(rt.ledger.store, skip_unreadable=True)  # verify already named the unreadable ones
    registry = rt.workspace / "registry"
    tags = registry_tags(registry)
    clips = raw_clips(rt.store)
    models = model_records(rt.store)
    orphans: list[AuditProblem] = []
    if tags is None:
        orphans.append(AuditProblem("no_registry", str(registry), "no data registry in this workspace: the dataset "
                                    "tags were not cross-checked; run verify where the registry lives"))
    else:
        orphans += check_tags(tags, _claims(events, "tag"), registry)
    orphans += check_clips(clips, _stored_claims(events))
    orphans += check_models(models, _claims(events, "model_version"), rt.store)
    return AuditReport(report, tuple(orphans), len(tags or {}), len(clips), len(models))


# --- what exists ----------------------------------------------------------------------------------

def registry_tags(registry: Path) -> dict[str, str] | None:
    """Every tag of the data registry and the commit it points at; None when there is no registry."""
    if not (registry / ".git").exists():
        return None
    lines = run_git(registry, "for-each-ref", "refs/tags",
                    "--format=%(refname:short) %(objectname) %(*objectname)").stdout.splitlines()
    tags = {}
    for line in lines:
        name, obj, *peeled = line.split()
        tags[name] = peeled[0] if peeled else obj  # an annotated tag's commit is its peeled object
    return tags


def model_records(store: ObjectStore) -> dict[str, str]:
    """version id -> key of every model record (``models/<version_id>/model_version.json``)."""
    out = {}
    for key in store.list_keys(f"{MODELS_PREFIX}/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "model_version.json":
            out[parts[1]] = key
    return out


def _aliases(store: ObjectStore) -> dict[str, str]:
    """alias -> the version id it points at."""
    out = {}
    for key in store.list_keys(ALIASES_PREFIX):
        try:
            out[PurePosixPath(key).stem] = str(store.get_json(key)["version_id"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            out[PurePosixPath(key).stem] = ""
    return out


# --- what the ledger claims -----------------------------------------------------------------------

def _claims(events: Iterable[LedgerEvent], field: str) -> list[_Claim]:
    """Every event whose outputs name a ``field`` (``tag``, ``model_version``), oldest first."""
    return [_Claim(e.outputs[field], e) for e in events if isinstance(e.outputs.get(field), str)]


def _stored_claims(events: Iterable[LedgerEvent]) -> list[_Claim]:
    """Every clip a crawl event lists as stored."""
    return [_Claim(sha, e) for e in events if e.action in CRAWL_ACTIONS
            for sha in e.outputs.get("stored") or () if isinstance(sha, str)]


# --- the cross-checks -----------------------------------------------------------------------------

def check_tags(tags: dict[str, str], claims: list[_Claim], registry: Path) -> list[AuditProblem]:
    """Each tag has a publishing event recording its commit; each published tag still exists."""
    last: dict[str, _Claim] = {c.name: c for c in claims}  # a re-created registry re-publishes a tag
    problems = []
    for tag, rev in sorted(tags.items()):
        claim = last.get(tag)
        if claim is None:
            problems.append(AuditProblem("untracked_tag", tag, f"registry {registry} has tag {tag} but no ledger "
                                         "event published it: it was made by hand or by a run killed before its "
                                         f"event; inspect it (git -C {registry} show {tag}) and delete it if no run "
                                         "made it"))
        elif claim.event.outputs.get("git_rev") not in (None, rev):
            problems.append(AuditProblem("tag_moved", tag, f"tag {tag} points at {rev[:12]} but "
                                         f"{claim.where} published {str(claim.event.outputs['git_rev'])[:12]}: the "
                                         f"tag was moved or re-created; restore it (git -C {registry} tag -f -a {tag} "
                                         f"{claim.event.outputs['git_rev']}) or find who rewrote it"))
    for tag, claim in sorted(last.items()):
        if tag not in tags:
            problems.append(AuditProblem("missing_tag", tag, f"{claim.where} published {tag}, which registry "
                                         f"{registry} no longer has: restore the tag from a clone or a backup"))
    return problems


def check_clips(clips: dict[str, str], claims: list[_Claim]) -> list[AuditProblem]:
    """Each raw clip was recorded as stored by a crawl event; each recorded clip is still in the store."""
    claimed = {c.name: c for c in claims}
    problems = [AuditProblem("untracked_clip", key, f"clip {sha} is in the store but no "
                             f"{' or '.join(sorted(CRAWL_ACTIONS))} event lists it as stored: a crawl was killed "
                             "before its event; run the crawl again (it records clips a killed run stored) or "
                             "delete the object if no crawl put it there")
                for sha, key in sorted(clips.items()) if sha not in claimed]
    problems += [AuditProblem("missing_clip", f"{RAW_PREFIX}{sha[:2]}/{sha}…", f"{claim.where} stored clip {sha}, "
                              "which the store no longer has: restore it from a backup of the store")
                 for sha, claim in sorted(claimed.items()) if sha not in clips]
    return problems


def check_models(models: dict[str, str], claims: list[_Claim], store: ObjectStore) -> list[AuditProblem]:
    """Each model record has its registering event; each model an event names still has its record; each
    alias points at a recorded model."""
    registered = {c.name for c in claims if c.event.action in REGISTER_ACTIONS}
    problems = [AuditProblem("untracked_model", version, f"model record {key} has no "
                             f"{'/'.join(sorted(REGISTER_ACTIONS))} event: it was written by hand or by a run killed "
                             "before its event; register the model again or delete the record")
                for version, key in sorted(models.items()) if version not in registered]
    named = {c.name: c for c in claims}
    problems += [AuditProblem("missing_model", version, f"{claim.where} names model version {version}, whose record "
                              f"{MODELS_PREFIX}/{version}/model_version.json is gone: restore it from a backup")
                 for version, claim in sorted(named.items()) if version not in models]
    problems += [AuditProblem("dangling_alias", alias_key(alias), f"alias {alias} points at "
                              f"{version or 'nothing readable'}, which has no model record: point it at a "
                              "registered version")
                 for alias, version in sorted(_aliases(store).items()) if version not in models]
    return problems
