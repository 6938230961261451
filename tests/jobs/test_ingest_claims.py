"""Ingest with sources that claim their clips' label and generator in params.yaml: clips whose source
claims no label are quarantined naming ``crawl.sources[<name>].label``, setting it admits them without a
re-crawl, a generator a source names is allowed, and class balance is judged on the whole version."""

from __future__ import annotations

from tests.jobs.test_ingest import add_crawled, add_good_pairs, manifest_ids
from tests.support import media_factory as mf
from tests.support.workspaces import small_doc
from vigil.config.params import parse_params
from vigil.io.store import LocalStore
from vigil.jobs.ingest import allowed_generators, ingest
from vigil.jobs.runtime import runtime_for

FEED = "rss-sora"


def params(**feed_claims):
    doc = small_doc()
    doc["ingest"].update({"frames": 4, "workers": 2})
    doc["crawl"]["sources"].append({"name": FEED, "url": "https://feeds.example.test/sora.xml", **feed_claims})
    return parse_params(doc)


def add_feed_clips(store, media_dir, n: int) -> list[str]:
    """``n`` clips recorded from the feed with no label and no generator (the feed published none)."""
    media_dir.mkdir(parents=True, exist_ok=True)
    return [add_crawled(store, mf.make_mp4(media_dir, f"feed-{i}.mp4", n_frames=12, seed=300 + i), label="unknown",
                        generator="unknown", pair_id=None, source=FEED) for i in range(n)]


def test_unlabelled_clips_are_quarantined_naming_the_source_setting_and_admitted_once_it_is_set(tmp_path):
    # given a balanced set of 8 clips and 3 clips from a feed that claims no label
    store = LocalStore(tmp_path / "store")
    good = add_good_pairs(store, tmp_path / "media")
    feed = add_feed_clips(store, tmp_path / "feed", 3)

    # when ingest runs with no label set for the feed
    first = ingest(runtime_for(tmp_path / "ws", params(), store))

    # then the good clips are published and each feed clip is quarantined naming the cause and the setting
    assert first.status == "published", first.validation_summary
    assert manifest_ids(runtime_for(tmp_path / "ws", params(), store), first.version_tag) == set(good)
    quarantined = {p.sample_id: p for p in first.quarantined_rows}
    assert set(quarantined) == set(feed)
    for problem in quarantined.values():
        assert problem.reason == "validation:expect_column_values_to_not_be_in_set(label)"
        assert f"source {FEED} claims no label" in problem.detail and f"crawl.sources[{FEED}].label" in problem.detail

    # when the feed is declared all fake from one generator the zoo does not know (no re-crawl)
    declared = params(label="fake", generator="sora-2")
    assert "sora-2" in allowed_generators(declared)  # the user who wrote it meant it
    second = ingest(runtime_for(tmp_path / "ws", declared, store))

    # then the cached verdicts are judged again and the feed's clips join the version: its batch is all
    # fake, but balance is judged on the whole version (7 fakes of 11)
    assert second.status == "published", second.validation_summary
    rt = runtime_for(tmp_path / "ws", declared, store)
    assert manifest_ids(rt, second.version_tag) == set(good) | set(feed)
    assert not second.quarantined_rows
    assert second.counts["generator"]["sora-2"] == 3 and second.counts["label"] == {"fake": 7, "real": 4}
    assert "0.636 (7 of 11)" in second.validation_summary and "new rows 1.000 (3 of 3)" in second.validation_summary


def test_a_first_version_that_is_all_fake_is_refused_saying_add_real_clips(tmp_path):
    # given only the feed's clips, declared fake, in a fresh workspace
    store = LocalStore(tmp_path / "store")
    add_feed_clips(store, tmp_path / "feed", 3)
    rt = runtime_for(tmp_path / "ws", params(label="fake", generator="sora-2"), store)

    # when ingest runs; then the batch is refused, saying add real clips or change the bound
    report = ingest(rt)
    assert report.status == "rejected" and not report.quarantined_rows
    (problem,) = report.batch_problems
    assert problem.startswith("expect_column_mean_to_be_between(_is_fake): the first version would be all fake")
    assert "label: real" in problem and "validation.max_fake_fraction" in problem
