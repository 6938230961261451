"""A real-world-shaped source from the crawler to a trained model (issue 14's "done when").

The site (tests/support/real_site.py) is what a user points Vigil at: clips in MP4, WebM, GIF, MKV
and AVI with spaces in their names, one folder per generator and one of camera footage, served by
Python's own ``http.server`` (its real directory listing), with a video sitemap and an RSS feed of
the same files. None of it claims a label or a generator; the sources' settings in params.yaml do.
No clip carries ground-truth artifacts, so no teacher means label-only annotations for the fakes.
"""

from __future__ import annotations

import pytest

from tests.support.real_site import GENERATOR_FROM_PATH, real_site
from tests.support.workspaces import small_doc
from vigil.config.params import parse_params


def _params(site, **train):
    doc = small_doc(**train)
    claims = {"allow_private": True, "label": "fake", "generator_from_path": GENERATOR_FROM_PATH,
              "licence": "CC-BY-4.0"}
    doc["crawl"]["sources"] = [{"name": f"site-{shape}", "url": site.url(shape), **claims}
                               for shape in ("listing", "sitemap", "rss")]
    # generators read from URL paths are not known in advance: the user lists them
    doc["validation"]["allowed_generators"] = ["gen-a", "gen-b"]
    return parse_params(doc)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_plain_web_folder_of_clips_becomes_a_labelled_version_that_training_accepts(tmp_path):
    from vigil.io.registry import open_registry, read_manifest_at
    from vigil.io.store import LocalStore
    from vigil.jobs.annotate import annotate
    from vigil.jobs.crawl import resolved_sources, run_crawl
    from vigil.jobs.ingest import ingest
    from vigil.jobs.runtime import runtime_for
    from vigil.jobs.train import run_stage
    from vigil.models.profile import build_base
    from vigil.train.prepare import read_samples

    workspace = tmp_path / "ws"
    store = LocalStore(workspace / "store")
    with real_site(tmp_path / "site") as site:
        # given a listing, a sitemap and an RSS feed of the same six clips, and sources that claim for them
        params = _params(site, sft={"max_steps": 2, "batch_size": 2, "checkpoint_every": 2},
                         grpo={"max_steps": 2, "batch_size": 2, "num_generations": 2, "checkpoint_every": 2})
        # when the crawl runs
        with resolved_sources(params, workspace) as sources:
            crawled = run_crawl(runtime_for(workspace, params, store), sources)
    # then every clip is stored once (the other shapes' sightings are exact duplicates), none quarantined
    assert crawled.stored == len(site.clips) and crawled.quarantined == 0 and crawled.failed == 0, crawled.summary()
    # and each clip was crawled under the one source that listed it first; the others say so
    assert all(s.reachable for s in crawled.sources) and sum(s.candidates for s in crawled.sources) == len(site.clips)
    assert all("another source" in s.why_nothing for s in crawled.sources if not s.candidates)
    stored = {item.sha256: item for item in crawled.items if not item.duplicate}
    assert {c.sha256 for c in site.clips} == set(stored)
    for clip in site.clips:  # the claims came from the source's settings, and provenance says so
        item = stored[clip.sha256]
        assert (item.label, item.generator) == (clip.label, clip.generator)
        assert item.claimed_by.get("label") in {"source", "path"} and item.claimed_by.get("generator") in {"path"}

    # when ingest validates and versions them
    rt = runtime_for(workspace, params, store)
    ingested = ingest(rt)
    # then one version holds every clip, the AVI and MKV included
    assert ingested.status == "published", ingested.summary()
    registry = open_registry(workspace / "registry", store)
    manifest = read_manifest_at(registry, ingested.version_tag)
    assert set(manifest["sample_id"]) == set(stored)
    assert sorted(manifest["generator"]) == sorted(c.generator for c in site.clips)

    # when annotation runs without a teacher
    annotated = annotate(runtime_for(workspace, params, store))
    # then the fakes get label-only annotations, the reals synthetic ones, and a labelled version is published
    n_fake = sum(c.label == "fake" for c in site.clips)
    assert annotated.status == "published", annotated.summary()
    assert annotated.n_label_only == n_fake and annotated.n_grounded == len(site.clips) - n_fake

    # when training prepares that version and runs SFT then GRPO on the tiny model
    project = tmp_path / "project"
    prepared = run_stage(rt, "prepare", project, progress=False)
    samples = read_samples(project / "build" / "prepare")
    build_base(params.model.active, project / "build" / "pretrain")
    sft = run_stage(rt, "sft", project, progress=False)
    grpo = run_stage(rt, "grpo", project, progress=False)
    # then training accepted it: every clip is a sample, the fakes label-only, and both stages took their steps
    assert prepared["tag"] == annotated.version_tag and len(samples) == len(site.clips)
    assert {s.sample_id for s in samples if s.label_only} == {c.sha256 for c in site.clips if c.label == "fake"}
    assert sft["steps"] == 2 and grpo["steps"] == 2
    assert (project / "build" / "grpo" / "model.safetensors").is_file()
