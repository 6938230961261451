"""Model versions in the store: weights uploaded by content, one record per version, ledger events.

Layout: ``models/<version_id>/files/...`` (the model folder, every file checksum-verified on upload)
and ``models/<version_id>/model_version.json`` (:class:`vigil.core.model_version.ModelVersion`).
The version id is derived from the weights' hashes, so the same weights register once.

Each change is written first and recorded second, so a process killed in between leaves an effect
without its ledger event; the next registration of the same weights, or the next move of an alias to
the version it already names, finds the event missing and appends it (``repaired: true``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vigil.core.hashing import sha256_file, sha256_json
from vigil.core.model_version import ModelVersion
from vigil.io.ledger import Ledger, code_revision, find_events
from vigil.io.store import ObjectStore

log = logging.getLogger(__name__)

MODELS_PREFIX = "models"


def record_key(version_id: str) -> str:
    return f"{MODELS_PREFIX}/{version_id}/model_version.json"


def publish_model_version(store: ObjectStore, ledger: Ledger, model_dir: str | Path, *, base: str, profile: str,
                          params: dict[str, Any], dataset: dict[str, Any], metrics: dict[str, Any],
                          kind: str = "candidate") -> ModelVersion:
    """Upload ``model_dir`` and write its record; an already registered identical model is returned as is."""
    model_dir = Path(model_dir)
    files = {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in sorted(model_dir.rglob("*")) if p.is_file()}
    if not any(name.endswith(".safetensors") for name in files):
        raise FileNotFoundError(f"{model_dir} holds no weights (*.safetensors): did the grpo stage finish?")
    version_id = "mv-" + sha256_json(files)[:12]
    if store.exists(record_key(version_id)):
        version = ModelVersion.model_validate(store.get_json(record_key(version_id)))
        if find_events(ledger.store, f"model.{version.kind}", model_version=version_id):
            log.info("model version %s is already registered", version_id)
        else:  # a registration killed between the record and its event
            _record_registration(store, ledger, version, repaired=True)
            log.warning("model version %s was registered without its ledger event: recorded it now", version_id)
        return version
    prefix = f"{MODELS_PREFIX}/{version_id}/files"
    for name in files:
        store.put_file(f"{prefix}/{name}", model_dir / name)
    version = ModelVersion(version_id=version_id, kind=kind, base=base, profile=profile,
                           weights_uri=store.uri(prefix), files=files, params=params, dataset=dataset,
                           code_rev=code_revision(), metrics=metrics)
    store.put_json(record_key(version_id), version.model_dump(mode="json"))
    _record_registration(store, ledger, version)
    log.info("registered %s model version %s (%d files)", kind, version_id, len(files))
    return version


def _record_registration(store: ObjectStore, ledger: Ledger, version: ModelVersion, *, repaired: bool = False) -> None:
    dataset = version.dataset
    ledger.append(f"model.{version.kind}",
                  inputs={"dataset": dataset.get("tag"), "dataset_git_rev": dataset.get("git_rev"),
                          "manifest_md5": dataset.get("manifest_md5")},
                  outputs={"model_version": version.version_id, "record": store.uri(record_key(version.version_id)),
                           "weights_sha256": sha256_json(version.files), **({"repaired": True} if repaired else {})},
                  params={"profile": version.profile, "base": version.base})


def read_model_version(store: ObjectStore, version_id: str) -> ModelVersion:
    return ModelVersion.model_validate(store.get_json(record_key(version_id)))


def fetch_model(store: ObjectStore, version: ModelVersion, dest: str | Path) -> Path:
    """The version's model folder under ``dest`` (downloaded once; every file checked against its sha256)."""
    dest = Path(dest)
    done = dest / ".complete"
    if done.is_file() and done.read_text() == sha256_json(version.files):
        return dest
    prefix = f"{MODELS_PREFIX}/{version.version_id}/files"
    for name, digest in version.files.items():
        target = dest / name
        store.download(f"{prefix}/{name}", target)
        if sha256_file(target) != digest:
            target.unlink()
            raise ValueError(f"{version.version_id}: {name} does not match its recorded sha256: the store copy is "
                             "damaged; re-register the model")
    done.write_text(sha256_json(version.files))
    return dest


# Aliases: which version holds a role now. The registry issue adds their full history and rollback; here
# an alias is one record (and every change a ledger event, so the history is already auditable).

def alias_key(alias: str) -> str:
    return f"{MODELS_PREFIX}/aliases/{alias}.json"


def read_alias(store: ObjectStore, alias: str) -> str | None:
    """The version id an alias points at, or None when it is not set."""
    key = alias_key(alias)
    return str(store.get_json(key)["version_id"]) if store.exists(key) else None


def set_alias(store: ObjectStore, ledger: Ledger, alias: str, version_id: str, *, reason: dict[str, Any]) -> bool:
    """Point ``alias`` at ``version_id`` (the previous holder and the reason go into the ledger).

    Returns whether the alias moved. When it already names ``version_id``, nothing moves, but a move
    whose ledger event was lost (a process killed between the two writes) is recorded now.
    """
    previous = read_alias(store, alias)
    if previous == version_id:
        if not _last_alias_event_names(ledger, alias, version_id):
            _record_alias_move(ledger, store.get_json(alias_key(alias)), repaired=True)  # type: ignore[arg-type]
            log.warning("%s was moved to %s without its ledger event: recorded it now", alias, version_id)
        return False
    record = {"alias": alias, "version_id": version_id, "previous": previous, **reason}
    store.put_json(alias_key(alias), record)
    _record_alias_move(ledger, record)
    log.info("%s: %s -> %s", alias, previous, version_id)
    return True


def _last_alias_event_names(ledger: Ledger, alias: str, version_id: str) -> bool:
    moves = find_events(ledger.store, f"model.alias.{alias}")
    return bool(moves) and moves[-1].outputs.get("model_version") == version_id


def _record_alias_move(ledger: Ledger, record: dict[str, Any], *, repaired: bool = False) -> None:
    reason = {k: v for k, v in record.items() if k not in ("alias", "version_id", "previous")}
    ledger.append(f"model.alias.{record['alias']}", inputs={"previous": record["previous"], **reason},
                  outputs={"alias": record["alias"], "model_version": record["version_id"],
                           **({"repaired": True} if repaired else {})})


def record_gate(store: ObjectStore, version_id: str, decision: dict[str, Any]) -> ModelVersion:
    """Attach a gate decision (its id, verdict, failed rules, record URI) to the version's record."""
    version = read_model_version(store, version_id)
    updated = version.model_copy(update={"gate": decision})
    store.put_json(record_key(version_id), updated.model_dump(mode="json"))
    return updated
