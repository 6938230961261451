"""Small but real parameter sets and workspaces shared by the training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from vigil.config.params import parse_params

REPO = Path(__file__).resolve().parents[2]

# Small but real: every stage runs its true code path for a few steps.
SMALL = {
    "zoo": {"pairs_per_generator": 1},
    "train": {
        "pretrain": {"pairs_per_generator": [2, 1], "max_steps": 4, "batch_pairs": 2, "checkpoint_every": 2,
                     "log_every": 1, "render_workers": 1},
        "sft": {"max_steps": 4, "batch_size": 4, "checkpoint_every": 2, "log_every": 1},
        "grpo": {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 12,
                 "checkpoint_every": 1, "log_every": 1},
        "heldout": {"pairs_per_generator": 1, "max_new_tokens": 12, "batch_size": 12},
    },
}


def small_doc(**train_overrides) -> dict:
    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    doc["zoo"].update(SMALL["zoo"])
    for stage, values in SMALL["train"].items():
        doc["train"][stage].update(values)
    for stage, values in train_overrides.items():
        doc["train"][stage].update(values)
    return doc


def build_labelled_workspace(root: Path) -> Path:
    """A workspace with a labelled version (12 clips: 1 pair per generator)."""
    from vigil.io.store import LocalStore
    from vigil.jobs.annotate import annotate
    from vigil.jobs.crawl import resolved_sources, run_crawl
    from vigil.jobs.ingest import ingest
    from vigil.jobs.runtime import runtime_for

    store = LocalStore(root / "store")
    p = parse_params(small_doc())
    with resolved_sources(p, root) as sources:
        run_crawl(runtime_for(root, p, store), sources)
    assert ingest(runtime_for(root, p, store)).status == "published"
    assert annotate(runtime_for(root, p, store)).status == "published"
    return root
