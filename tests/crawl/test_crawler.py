"""Crawler: discovery, politeness, storage and dedup against real HTTP servers on loopback.

Every test starts a :class:`tests.support.crawl_servers.FaultServer` (or the zoo gallery), crawls it into a
real store (a folder, or S3 on a SeaweedFS server where the ``store`` fixture is used) and checks
what ended up in the store and what the server saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import media_factory
from tests.support.crawl_servers import (
    fast_params,
    fault_server,
    file,
    html,
    json_doc,
    publish_items,
    records,
    source,
    static,
)
from tests.support.pacing import assert_paced
from vigil.config.params import SourceParams
from vigil.core.hashing import sha256_bytes, sha256_file
from vigil.core.records import provenance_key
from vigil.crawl import crawl


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Perceptually distinct clips (seeds 1-6) and the bad inputs a crawler meets."""
    d = tmp_path_factory.mktemp("clips")
    out = {f"clip{s}": media_factory.make_clip(d, f"clip{s}.mp4", seed=s) for s in range(1, 7)}
    out["webm"] = media_factory.make_clip(d, "clip.webm", seed=11)
    out["gif"] = media_factory.make_gif(d, "clip.gif", seed=12)
    out["copy_of_clip1"] = media_factory.reencode(out["clip1"], d / "clip1_copy.mp4", width=128, crf=30)
    out["empty"] = media_factory.make_empty_file(d)
    out["html"] = media_factory.make_html_as_mp4(d)
    out["json"] = media_factory.make_json_as_mp4(d)
    out["truncated"] = media_factory.make_truncated_mp4(d)
    return out


def test_paginated_gallery_every_item_stored_once_with_provenance(clips, store, tmp_path):
    # given a 3-page gallery of 6 distinct clips with item pages and metadata JSON
    with fault_server() as server:
        media = {f"i{n}": clips[f"clip{n}"] for n in range(1, 7)}
        media_urls = publish_items(server, media, page_size=2)
        # when it is crawled
        report = crawl([source(server)], fast_params(), store, tmp_path / "state")
        item_page_hits = len(server.hits_to("/items/"))
    # then every clip is stored exactly once, content-addressed, with one provenance record each
    assert (report.discovered, report.stored, report.failed, report.quarantined) == (6, 6, 0, 0), report.problems
    raw = list(store.list_keys("raw/"))
    assert sorted(raw) == sorted(f"raw/{sha256_file(p)[:2]}/{sha256_file(p)}.mp4" for p in media.values())
    stored = records(store)
    assert sorted(r.media_url for r in stored) == sorted(media_urls)
    for item in stored:
        assert store.exists(provenance_key(item.sha256, sha256_bytes(item.media_url.encode())))
        assert (item.generator, item.label, item.licence) == ("testgen", "fake", "CC-BY-4.0")
        assert item.pair_id and item.pair_id.startswith("pair-i") and item.page_url.endswith(item.pair_id[5:])
        assert item.artifacts[0].type == "Texture Flicker" and item.artifacts[0].t == (0.1, 0.5)
        assert item.media_type == "video/mp4" and item.domain == "127.0.0.1" and item.phash
        assert item.media_url == item.final_url and not item.duplicate and item.near_duplicate_of is None
    assert {i.sha256 for i in report.items} == {r.sha256 for r in stored}
    assert item_page_hits == 12  # 6 item pages + 6 metadata documents, each fetched once


def test_json_feed_with_metadata_extension_is_crawled_without_item_pages(clips, tmp_path):
    from vigil.io.store import LocalStore

    store = LocalStore(tmp_path / "store")
    # given a JSON Feed 1.1 whose items carry their metadata in a `_vigil` extension
    with fault_server() as server:
        server.route("/media/a.webm", file(clips["webm"], content_type="video/webm"))
        server.route("/media/b.gif", file(clips["gif"], content_type="image/gif"))
        server.route("/feed.json", json_doc({
            "version": "https://jsonfeed.org/version/1.1", "title": "zoo",
            "items": [
                {"id": "a", "url": "/items/a", "_vigil": {"media_url": "/media/a.webm", "generator": "gen-x",
                                                          "label": "fake", "pair_id": "p1"}},
                {"id": "b", "url": "/items/b", "attachments": [{"url": "/media/b.gif", "mime_type": "image/gif"}]},
            ]}, content_type="application/feed+json"))
        # when the feed is the source
        report = crawl([source(server, "/feed.json")], fast_params(), store, tmp_path / "state")
        item_page_hits = server.hits_to("/items/")
    # then both are stored (WebM and GIF are accepted), claims come from the extension, and no
    # item page had to be fetched
    assert report.stored == 2, report.problems
    by_type = {r.media_type: r for r in records(store)}
    assert set(by_type) == {"video/webm", "image/gif"}
    assert by_type["video/webm"].media_key.endswith(".webm") and by_type["image/gif"].media_key.endswith(".gif")
    assert (by_type["video/webm"].generator, by_type["video/webm"].pair_id) == ("gen-x", "p1")
    assert by_type["image/gif"].generator == "unknown"
    assert item_page_hits == []


def test_robots_disallowed_paths_are_never_requested(clips, tmp_path):
    from vigil.io.store import LocalStore

    store = LocalStore(tmp_path / "store")
    # given a gallery whose robots.txt disallows /private/ for every agent, and a listing that
    # links a private item page and an item page whose video lives under /private/
    with fault_server() as server:
        server.route("/robots.txt", static("User-agent: *\nDisallow: /private/\n", content_type="text/plain"))
        server.route("/", html('<a href="/items/ok">ok</a><a href="/private/items/x">x</a>'
                               '<a href="/items/leak">leak</a>'))
        server.route("/items/ok", html('<video src="/media/ok.mp4"></video>'))
        server.route("/items/leak", html('<video src="/private/media/leak.mp4"></video>'))
        server.route("/media/ok.mp4", file(clips["clip1"]))
        server.route("/private/items/x", html('<video src="/media/x.mp4"></video>'))
        server.route("/private/media/leak.mp4", file(clips["clip2"]))
        # when crawled
        report = crawl([source(server)], fast_params(), store, tmp_path / "state")
        private_hits = server.hits_to("/private/")
        agents = {h.user_agent for h in server.hits}
    # then nothing under /private/ was asked for, and both refusals are recorded as skipped
    assert private_hits == []
    assert report.stored == 1
    refused = {p.url for p in report.problems if p.reason == "robots_disallowed"}
    assert refused == {server.url("/private/items/x"), server.url("/private/media/leak.mp4")}
    assert report.skipped == 2
    assert agents == {fast_params().user_agent}


def test_per_domain_rate_limit_spaces_requests(clips, tmp_path):
    from vigil.io.store import LocalStore

    # given a gallery of 4 items and a limit of 10 requests per second per domain
    with fault_server() as server:
        publish_items(server, {f"i{n}": clips[f"clip{n}"] for n in range(1, 5)}, page_size=4)
        # when crawled with plenty of concurrency
        crawl([source(server)], fast_params(per_domain_rps=10.0, concurrency=8, per_domain_concurrency=8),
              LocalStore(tmp_path / "store"), tmp_path / "state")
        arrivals = sorted(h.at for h in server.hits)
    # then the server saw requests at most 10/s (a gap between neighbours flaked in CI on a loaded
    # host: tests.pacing says what can be asserted)
    assert len(arrivals) == 1 + 1 + 4 * 3  # robots, listing, 4 x (item page, metadata, media)
    assert_paced(arrivals, 0.1)


def test_per_domain_concurrency_is_capped(clips, tmp_path):
    from vigil.io.store import LocalStore

    # given slow media (0.3 s each) and at most 2 requests in flight per domain
    with fault_server() as server:
        publish_items(server, {f"i{n}": clips[f"clip{n}"] for n in range(1, 6)}, media_delay_s=0.3)
        report = crawl([source(server)], fast_params(concurrency=8, per_domain_concurrency=2),
                       LocalStore(tmp_path / "store"), tmp_path / "state")
        peak = server.max_in_flight
    # then the server never saw more than 2 at once (and did see 2: the crawl is concurrent)
    assert report.stored == 5
    assert peak == 2


def test_exact_duplicate_at_two_urls_is_stored_once_with_two_sightings(clips, store, tmp_path):
    # given the same bytes published at two URLs
    with fault_server() as server:
        server.route("/", html('<a href="/a">a</a><a href="/b">b</a>'))
        server.route("/a", html('<video src="/media/a.mp4"></video>'))
        server.route("/b", html('<video src="/mirror/b.mp4"></video>'))
        server.route("/media/a.mp4", file(clips["clip3"]))
        server.route("/mirror/b.mp4", file(clips["clip3"]))
        report = crawl([source(server)], fast_params(concurrency=2), store, tmp_path / "state")
    # then one object holds the bytes, and two sightings point at it, one marked duplicate
    sha = sha256_file(clips["clip3"])
    assert list(store.list_keys("raw/")) == [f"raw/{sha[:2]}/{sha}.mp4"]
    sightings = records(store)
    assert len(sightings) == 2 and {s.sha256 for s in sightings} == {sha}
    assert sorted(s.duplicate for s in sightings) == [False, True]
    assert {s.media_key for s in sightings} == {f"raw/{sha[:2]}/{sha}.mp4"}
    assert (report.stored, report.duplicates, len(report.items)) == (1, 1, 2)


def test_near_duplicate_is_recorded_not_stored_even_with_a_fresh_state_dir(clips, store, tmp_path):
    # given a clip already crawled, then a re-encoded, resized copy published elsewhere
    with fault_server() as server:
        server.route("/", html('<video src="/media/original.mp4"></video>'))
        server.route("/media/original.mp4", file(clips["clip1"]))
        first = crawl([source(server)], fast_params(), store, tmp_path / "state1")
        server.route("/", html('<video src="/reupload/copy.mp4"></video>'))
        server.route("/reupload/copy.mp4", file(clips["copy_of_clip1"]))
        server.route("/other/clip2.mp4", file(clips["clip2"]))
        # when the copy is crawled with a new state dir (the phash index is rebuilt from the store)
        second = crawl([source(server)], fast_params(), store, tmp_path / "state2")
    # then the copy gets a sighting pointing at the original, and its bytes are not stored
    assert first.stored == 1 and second.stored == 0 and second.near_duplicates == 1
    original = sha256_file(clips["clip1"])
    (item,) = second.items
    assert item.near_duplicate_of == original and item.media_key is None
    assert item.sha256 == sha256_file(clips["copy_of_clip1"]) != original
    assert list(store.list_keys("raw/")) == [f"raw/{original[:2]}/{original}.mp4"]
    assert store.exists(provenance_key(item.sha256, sha256_bytes(item.media_url.encode())))


def test_recrawl_is_idempotent_and_requests_no_media_again(clips, tmp_path):
    from vigil.io.store import LocalStore

    store = LocalStore(tmp_path / "store")
    with fault_server() as server:
        publish_items(server, {f"i{n}": clips[f"clip{n}"] for n in range(1, 4)})
        first = crawl([source(server)], fast_params(), store, tmp_path / "state")
        keys_after_first = list(store.list_keys())
        media_hits = len(server.hits_to("/media/"))
        # when crawled again with the same state
        second = crawl([source(server)], fast_params(), store, tmp_path / "state")
        media_hits_again = len(server.hits_to("/media/")) - media_hits
        # and once more with the state lost: downloads again, but the store is the truth
        third = crawl([source(server)], fast_params(), store, tmp_path / "fresh-state")
    assert first.stored == 3
    assert (second.discovered, second.already_done, second.items, media_hits_again) == (3, 3, (), 0)
    assert (third.stored, third.duplicates, third.items, third.already_done) == (0, 0, (), 3)
    assert list(store.list_keys()) == keys_after_first


def test_zoo_gallery_pages_and_feed_every_visible_item_stored_once(store, tmp_path):
    from vigil.zoo.catalog import ZooConfig
    from vigil.zoo.gallery import GalleryServer
    from vigil.zoo.generators import fake_generator_names

    # given the zoo gallery with two generators, 3 pairs each, 4 items per listing page
    config = ZooConfig(pairs_per_generator=3, generators=fake_generator_names()[:2], duration_s=(1.0, 1.5))
    with GalleryServer(tmp_path / "zoo", config, page_size=4) as gallery:
        visible = {i.item_id for i in gallery.visible_items()}
        # when its pages are crawled, and then its feed
        pages = crawl([SourceParams(name="zoo", url=gallery.url + "/", allow_private=True)],
                      fast_params(), store, tmp_path / "state")
        feed = crawl([SourceParams(name="zoo-feed", url=gallery.url + "/feed.json", allow_private=True)],
                     fast_params(), store, tmp_path / "state")
        requested = [path for _, path in gallery.requests]
    # then every visible item is stored once, with its claims, ground truth and masks
    stored = records(store)
    assert pages.failed == 0 and pages.quarantined == 0, pages.problems
    assert pages.stored + pages.near_duplicates == len(visible) == len(stored)
    assert {r.media_url.rsplit("/", 1)[1].removesuffix(".mp4") for r in stored} == visible
    assert all(r.generator != "unknown" and r.label in ("real", "fake") and r.pair_id for r in stored)
    assert any(r.artifacts for r in stored if r.label == "fake")
    assert all(r.mask_key and store.exists(r.mask_key) for r in stored if r.media_key)
    # and the feed finds the same media URLs, already done: nothing downloaded or recorded twice
    assert feed.items == () and feed.already_done == feed.discovered > 0
    assert sum(p.startswith("/media/") for p in requested) == len(visible)
    assert not any(p.startswith("/private") for p in requested)


def test_a_listing_cut_by_max_pages_is_a_warning_that_names_the_setting(store, tmp_path, caplog):
    from vigil.zoo.catalog import ZooConfig
    from vigil.zoo.gallery import GalleryServer
    from vigil.zoo.generators import fake_generator_names

    # given a gallery whose 12 items fill three listing pages of 4
    config = ZooConfig(pairs_per_generator=3, generators=fake_generator_names()[:2], duration_s=(1.0, 1.5))
    with GalleryServer(tmp_path / "zoo", config, page_size=4) as gallery:
        visible = len(gallery.visible_items())
        # when the crawl may read only one listing page
        with caplog.at_level("WARNING", logger="vigil.crawl.crawler"):
            report = crawl([SourceParams(name="zoo", url=gallery.url + "/", allow_private=True)],
                           fast_params(max_pages=1), store, tmp_path / "state")
    # then it stores only that page's items and warns, naming the setting that cut it
    assert 0 < report.stored + report.near_duplicates < visible
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("max_pages=1" in m and "crawl.max_pages" in m for m in warnings), warnings


def test_fake_beside_its_paired_real_is_kept_but_a_relabelled_copy_is_not(store, tmp_path):
    from vigil.zoo.catalog import ZooConfig, build_catalog, render_item

    # given a zoo pair (a fake is its real plus local artifacts: perceptually near-identical)
    config = ZooConfig(pairs_per_generator=1, generators=("lumen-v1",))
    real_item, fake_item = build_catalog(config)
    real = render_item(real_item, config, tmp_path / "zoo").media_path
    fake = render_item(fake_item, config, tmp_path / "zoo").media_path
    copy_of_fake = media_factory.reencode(fake, tmp_path / "copy.mp4", width=128, crf=30)
    with fault_server() as server:
        publish_items(server, {"real": real, "fake": fake, "fake-copy": copy_of_fake})
        for item_id, label in [("real", "real"), ("fake", "fake"), ("fake-copy", "fake")]:
            server.route(f"/items/{item_id}.json", json_doc({
                "item_id": item_id, "pair_id": "pair-1", "generator": "lumen-v1" if label == "fake" else "real",
                "label": label, "media_url": f"/media/{item_id}.mp4"}))
        # when the three are crawled
        report = crawl([source(server)], fast_params(concurrency=1, per_domain_concurrency=1), store,
                       tmp_path / "state")
    # then the real and the fake are both stored; the same-label re-encode is a near-duplicate
    by_url = {i.media_url.rsplit("/", 1)[1]: i for i in report.items}
    assert report.stored == 2 and report.near_duplicates == 1
    assert by_url["real.mp4"].media_key and by_url["fake.mp4"].media_key
    assert by_url["fake-copy.mp4"].near_duplicate_of == by_url["fake.mp4"].sha256
