"""``vigil audit verify``'s cross-checks: every tag, raw clip and model record has the event that made it,
and every event's tag, clip and model still exists. A tiny state is built by hand: a registry with a tag,
a raw clip in the store, a model record, and the events a run would have written for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.config.params import Params
from vigil.core.hashing import sha256_bytes
from vigil.io.git import ensure_identity, run_git
from vigil.io.ledger import HEAD_KEY, event_key
from vigil.io.models import alias_key, record_key
from vigil.io.store import content_key
from vigil.jobs.audit import audit_verify
from vigil.jobs.runtime import Runtime, runtime_for


@dataclass(frozen=True)
class State:
    rt: Runtime
    registry: Path
    rev: str  # the commit ds-0001 points at
    clip_sha: str
    model: str


def _commit_and_tag(registry: Path, tag: str) -> str:
    run_git(registry, "commit", "--quiet", "--allow-empty", "-m", f"version {tag}")
    run_git(registry, "tag", "-a", tag, "-m", tag)
    return run_git(registry, "rev-list", "-n", "1", tag).stdout.strip()


def _put_clip(rt: Runtime, data: bytes) -> str:
    sha = sha256_bytes(data)
    rt.store.put_bytes(content_key(sha, "raw", ".mp4"), data, if_absent=True)
    return sha


def _put_model(rt: Runtime, version: str) -> None:
    rt.store.put_json(record_key(version), {"version_id": version, "kind": "candidate"})


@pytest.fixture
def state(tmp_path) -> State:
    """A consistent workspace: each thing made together with its event, as a run makes them."""
    rt = runtime_for(tmp_path / "ws", Params())
    registry = rt.workspace / "registry"
    registry.mkdir(parents=True)
    run_git(registry, "init", "--quiet", "--initial-branch=main")
    ensure_identity(registry)
    rev = _commit_and_tag(registry, "ds-0001")
    clip = _put_clip(rt, b"clip-one")
    rt.ledger.append("crawl.run", outputs={"stored": [clip], "duplicates": []})
    rt.ledger.append("dataset.publish", outputs={"tag": "ds-0001", "git_rev": rev})
    _put_model(rt, "mv-000000000001")
    rt.ledger.append("model.candidate", outputs={"model_version": "mv-000000000001",
                                                 "record": rt.store.uri(record_key("mv-000000000001"))})
    rt.store.put_json(alias_key("champion"), {"alias": "champion", "version_id": "mv-000000000001"})
    rt.ledger.append("model.alias.champion", outputs={"alias": "champion", "model_version": "mv-000000000001"})
    return State(rt, registry, rev, clip, "mv-000000000001")


def _kinds(report) -> list[tuple[str, str]]:
    return sorted((p.kind, p.subject) for p in report.problems)


def test_a_consistent_state_has_no_problems(state):
    report = audit_verify(state.rt)
    assert report.problems == () and report.ok and not report.tampered
    assert (report.ledger.n_events, report.n_tags, report.n_clips, report.n_models) == (4, 1, 1, 1)


def test_a_tag_without_its_event_is_named(state):
    # given a tag made by hand (or by a run killed before its event)
    _commit_and_tag(state.registry, "ds-0002")
    report = audit_verify(state.rt)
    assert _kinds(report) == [("untracked_tag", "ds-0002")]
    assert "no ledger event published it" in report.problems[0].detail and not report.ok


def test_a_labelled_version_is_published_by_annotation_publish(state):
    rev = _commit_and_tag(state.registry, "ds-0002")
    state.rt.ledger.append("annotation.publish", outputs={"tag": "ds-0002", "git_rev": rev})
    assert audit_verify(state.rt).problems == ()


def test_a_moved_tag_is_named(state):
    # given ds-0001 re-pointed at another commit
    run_git(state.registry, "commit", "--quiet", "--allow-empty", "-m", "rewrite")
    run_git(state.registry, "tag", "-f", "-a", "ds-0001", "-m", "moved")
    report = audit_verify(state.rt)
    assert _kinds(report) == [("tag_moved", "ds-0001")]
    assert state.rev in report.problems[0].detail


def test_an_event_naming_a_deleted_tag_is_named(state):
    run_git(state.registry, "tag", "-d", "ds-0001")
    report = audit_verify(state.rt)
    assert _kinds(report) == [("missing_tag", "ds-0001")]
    assert event_key(1) in report.problems[0].detail and "dataset.publish" in report.problems[0].detail


def test_a_raw_clip_without_a_crawl_event_is_named(state):
    # given a clip a killed crawl stored without its event
    orphan = _put_clip(state.rt, b"clip-two")
    report = audit_verify(state.rt)
    assert _kinds(report) == [("untracked_clip", content_key(orphan, "raw", ".mp4"))]
    assert orphan in report.problems[0].detail


def test_a_reconcile_event_accounts_for_a_clip(state):
    orphan = _put_clip(state.rt, b"clip-two")
    state.rt.ledger.append("crawl.reconcile", outputs={"stored": [orphan]})
    assert audit_verify(state.rt).problems == ()


def test_a_stored_clip_that_is_gone_is_named(state):
    state.rt.store.delete(content_key(state.clip_sha, "raw", ".mp4"))
    report = audit_verify(state.rt)
    assert [p.kind for p in report.problems] == ["missing_clip"]
    assert state.clip_sha in report.problems[0].detail and "crawl.run" in report.problems[0].detail


def test_a_model_record_without_its_registering_event_is_named(state):
    _put_model(state.rt, "mv-000000000002")
    report = audit_verify(state.rt)
    assert _kinds(report) == [("untracked_model", "mv-000000000002")]


def test_an_alias_event_does_not_register_a_model(state):
    # an alias move names the version, but only model.<kind> registers it
    _put_model(state.rt, "mv-000000000002")
    state.rt.ledger.append("model.alias.shadow", outputs={"alias": "shadow", "model_version": "mv-000000000002"})
    assert _kinds(audit_verify(state.rt)) == [("untracked_model", "mv-000000000002")]


def test_a_model_whose_record_is_gone_is_named_with_its_alias(state):
    state.rt.store.delete(record_key(state.model))
    report = audit_verify(state.rt)
    assert _kinds(report) == [("dangling_alias", alias_key("champion")), ("missing_model", state.model)]


def test_a_tampered_chain_shows_with_the_orphans(state):
    # given an edited event and an orphan clip
    doc = state.rt.store.get_json(event_key(0))
    doc["outputs"]["stored"] = []
    state.rt.store.put_bytes(event_key(0), json.dumps(doc).encode())
    report = audit_verify(state.rt)
    assert report.tampered and not report.ok
    assert ("edited", event_key(0)) in _kinds(report)
    assert "untracked_clip" in {p.kind for p in report.problems}


def test_a_lagging_head_is_a_warning_only(state):
    state.rt.store.put_json(HEAD_KEY, {"seq": 2, "hash": state.rt.store.get_json(event_key(2))["hash"]})
    report = audit_verify(state.rt)
    assert [p.kind for p in report.warnings] == ["head_lagging"] and not report.errors and report.ok


def test_without_a_registry_the_tag_checks_are_skipped_with_a_warning(tmp_path):
    rt = runtime_for(tmp_path / "ws", Params())
    rt.ledger.append("dataset.publish", outputs={"tag": "ds-0001", "git_rev": "abc"})
    report = audit_verify(rt)
    assert [(p.kind, p.severity) for p in report.problems] == [("no_registry", "warning")] and report.ok


# --- the command ----------------------------------------------------------------------------------

def _cli(args: list[str], workspace: Path):
    cleared = {k: None for k in os.environ if k.startswith("VIGIL_")}
    return CliRunner().invoke(app, ["audit", *args], env={**cleared, "VIGIL_WORKSPACE": str(workspace)})


def test_the_command_passes_a_consistent_state(state):
    result = _cli(["verify"], state.rt.workspace)
    assert result.exit_code == 0, result.output
    assert "ledger OK: 4 events" in result.output and "cross-checks OK: 1 tags, 1 clips, 1 models" in result.output


def test_the_command_names_each_orphan_and_exits_1(state):
    _commit_and_tag(state.registry, "ds-0002")
    _put_model(state.rt, "mv-000000000002")
    result = _cli(["verify"], state.rt.workspace)
    assert result.exit_code == 1, result.output
    assert "ledger OK" in result.output and "cross-checks FAILED: 2 orphan(s)" in result.output
    assert "untracked_tag: ds-0002" in result.output and "untracked_model: mv-000000000002" in result.output


def test_the_command_prints_a_lagging_head_and_exits_0(state):
    state.rt.store.put_json(HEAD_KEY, {"seq": 2, "hash": state.rt.store.get_json(event_key(2))["hash"]})
    result = _cli(["verify"], state.rt.workspace)
    assert result.exit_code == 0, result.output
    assert "warning: head_lagging" in result.output and "the next append repairs it" in result.output


def test_the_command_reports_json(state):
    state.rt.store.put_json("ledger/events/backup.json", {})
    result = _cli(["verify", "--json"], state.rt.workspace)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["tampered"] and [p["kind"] for p in doc["problems"]] == ["stray"]


def test_audit_log_leaves_out_an_unreadable_event(state):
    state.rt.store.put_bytes(event_key(1), b"garbage")
    result = _cli(["log", "--json"], state.rt.workspace)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines() if line.startswith("{")] == [0, 2, 3]
