"""Real-world site shapes: directory listings (http.server, nginx autoindex), nested folders, video
sitemaps and indexes, RSS; per-source claims; and a source that yields nothing saying why.

Every test serves :func:`tests.support.real_site.real_site` (Python's own http.server on loopback)
and crawls it into a real local store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support import media_factory
from tests.support.crawl_servers import fast_params, records
from tests.support.real_site import GENERATOR_FROM_PATH, SHAPES, real_site
from vigil.config.errors import ConfigError, ServiceError
from vigil.config.params import SourceParams, parse_params
from vigil.crawl import crawl
from vigil.io.store import LocalStore


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One site for the tests that only read it."""
    with real_site(tmp_path_factory.mktemp("real-site")) as running:
        yield running


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_stores_every_clip_with_the_source_claims(site, shape, tmp_path):
    # given one start URL of the site's shape, and a source claiming label fake and the folder as generator
    store = LocalStore(tmp_path / "store")
    before = len(site.requests)
    # when it is crawled
    report = crawl([site.source("web", shape)], fast_params(), store, tmp_path / "state")
    requested = [path for _, path in site.requests[before:]]
    # then every clip is stored once, with generator from its folder, label from the source (real
    # from the 'real' folder) and the claims recorded as the source's, not the site's
    expected = site.media_urls(shape)
    assert (report.stored, report.failed, report.quarantined) == (len(expected), 0, 0), report.problems
    stored = {r.media_url: r for r in records(store)}
    assert set(stored) == set(expected)
    for url, clip in expected.items():
        record = stored[url]
        assert (record.sha256, record.generator, record.label, record.licence) == (
            clip.sha256, clip.generator, clip.label, "CC-BY-4.0")
        assert record.claimed_by == {"generator": "path", "label": "path" if clip.label == "real" else "source",
                                     "licence": "source"}
    # and no clip was fetched as a page: each media file was asked for exactly once (its download)
    media_paths = [p for p in requested if Path(p).suffix in {".mp4", ".webm", ".gif", ".mkv", ".avi"}]
    assert sorted(media_paths) == sorted(set(media_paths)) and len(media_paths) == len(expected)
    (outcome,) = report.sources
    assert outcome.reachable and outcome.stored == len(expected) and outcome.why_nothing is None


def test_a_listing_never_follows_the_parent_or_sort_links(site, tmp_path):
    # given the nginx-style listing (../ first, ?C=N;O=D sort links) below the site root
    before = len(site.requests)
    report = crawl([site.source("web", "autoindex")], fast_params(), LocalStore(tmp_path / "store"), tmp_path / "s")
    requested = [path for _, path in site.requests[before:]]
    # then only the start folder, its three sub-folders, robots.txt and the clips were asked for
    pages = [p for p in requested if p.endswith("/") or "?" in p]
    assert sorted(pages) == ["/nginx/clips/", "/nginx/clips/gen-a/", "/nginx/clips/gen-b/", "/nginx/clips/real/"]
    assert report.sources[0].pages_read == 4


def test_max_depth_bounds_nested_listings_and_says_so(site, tmp_path, caplog):
    # given the nested listing and a crawl that may not go below the start folder
    before = len(site.requests)
    with caplog.at_level("WARNING", logger="vigil.crawl.crawler"):
        report = crawl([site.source("web", "listing")], fast_params(max_depth=0),
                       LocalStore(tmp_path / "store"), tmp_path / "state")
    requested = [path for _, path in site.requests[before:]]
    # then no sub-folder is read, nothing is stored, and the warning names the source and crawl.max_depth
    assert not any(p.startswith("/clips/gen-") for p in requested) and report.stored == 0
    (outcome,) = report.sources
    assert outcome.reachable and outcome.candidates == 0
    assert "3 sub-folder(s) deeper than crawl.max_depth=0" in outcome.why_nothing
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("crawl.max_depth" in m and "web" in m for m in warnings), warnings
    assert any(m.startswith("source web:") and "nothing new" in m for m in warnings), warnings


def test_max_pages_counts_sub_folders(site, tmp_path):
    # given the nested listing (start + 3 folders) and at most 2 pages
    before = len(site.requests)
    report = crawl([site.source("web", "listing")], fast_params(max_pages=2), LocalStore(tmp_path / "store"),
                   tmp_path / "state")
    pages = [p for _, p in site.requests[before:] if p.endswith("/")]
    # then the start page and the first folder (gen-a) are read, and only gen-a's clips are stored
    assert pages == ["/clips/", "/clips/gen-a/"]
    assert {r.generator for r in report.items} == {"gen-a"} and report.stored == 2


def test_a_sitemap_index_child_is_one_level_deeper(site, tmp_path):
    # given the sitemap index, whose child sitemaps are one level below it, and max_depth 0
    report = crawl([site.source("web", "sitemap_index")], fast_params(max_depth=0), LocalStore(tmp_path / "store"),
                   tmp_path / "state")
    # then its children are not read, and the outcome says which setting would reach them
    assert report.stored == 0 and "crawl.max_depth=0" in report.sources[0].why_nothing


def test_a_reachable_source_without_media_says_what_was_read(site, tmp_path, caplog):
    # given a folder that lists only a text file and a still image
    docs = site.root / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "readme.txt").write_text("no clips here")
    (docs / "thumb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with caplog.at_level("WARNING", logger="vigil.crawl.crawler"):
        report = crawl([SourceParams(name="docs", url=site.base_url + "/docs/", allow_private=True)], fast_params(),
                       LocalStore(tmp_path / "store"), tmp_path / "state")
    # then nothing is stored or quarantined, and the outcome and the warning name the source and what it saw
    (outcome,) = report.sources
    assert (report.stored, report.quarantined, outcome.reachable, outcome.links_seen) == (0, 0, True, 2)
    assert "no media found" in outcome.why_nothing and "2 linked file(s) were neither pages nor video" in outcome.why_nothing
    assert report.none_reached() is None
    assert any("source docs" in r.getMessage() and "no media found" in r.getMessage() for r in caplog.records)


def test_an_unknown_extension_link_to_a_video_is_taken_from_its_first_bytes(site, tmp_path):
    # given a listing that links a clip saved without a telling extension
    odd = site.root / "odd"
    odd.mkdir(exist_ok=True)
    (odd / "download").write_bytes((site.root / "clips" / "gen-a" / "clip 1.mp4").read_bytes())
    before = len(site.requests)
    report = crawl([SourceParams(name="odd", url=site.base_url + "/odd/", allow_private=True)], fast_params(),
                   LocalStore(tmp_path / "store"), tmp_path / "state")
    # then it is stored (the bytes decided), having been requested twice: its head as a page, then the download
    assert report.stored == 1 and report.items[0].media_type == "video/mp4"
    assert [p for _, p in site.requests[before:]].count("/odd/download") == 2


def test_bad_generator_from_path_is_a_config_error_naming_the_setting():
    for pattern, needle in [("(unclosed", "does not compile"), (r"/([^/]+)/", "no named group 'generator'")]:
        with pytest.raises(ConfigError) as caught:
            parse_params({"crawl": {"sources": [{"name": "a", "url": "https://a.example/"},
                                                {"name": "b", "url": "https://b.example/",
                                                 "generator_from_path": pattern}]}})
        assert "crawl.sources.1.generator_from_path" in str(caught.value) and needle in str(caught.value)
    with pytest.raises(ConfigError, match="a real clip's generator is 'real'"):
        parse_params({"crawl": {"sources": [{"name": "a", "url": "https://a.example/", "label": "real",
                                             "generator": "sora-2"}]}})


def test_a_provenance_record_written_before_source_claims_still_loads(site, tmp_path):
    from vigil.core.records import CrawledItem

    # given a record as the crawler wrote it before claimed_by existed
    crawl([site.source("web", "rss")], fast_params(), store := LocalStore(tmp_path / "store"), tmp_path / "state")
    key = next(iter(store.list_keys("provenance/")))
    old = {k: v for k, v in store.get_json(key).items() if k != "claimed_by"}
    # then it still validates, with no claim attributed to the source
    assert CrawledItem.model_validate(old).claimed_by == {}


# ---- the command line ---------------------------------------------------------------------------

def _vigil_crawl(tmp_path: Path, sources: list[dict], **crawl_params):
    """Run `vigil crawl` the way a user does, on a workspace under tmp_path with these sources."""
    from vigil.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"crawl": {"sources": sources, "retries": 0, "connect_timeout_s": 2.0,
                                                **crawl_params}}))
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        cleared = {k: None for k in os.environ if k.startswith("VIGIL_")}
        return CliRunner().invoke(app, ["crawl", "--params", str(params)],
                                  env={**cleared, "VIGIL_WORKSPACE": str(tmp_path / "ws")})
    finally:
        os.chdir(old)


def test_cli_lists_near_duplicates_and_a_recrawl_reports_what_is_already_known(tmp_path):
    with real_site(tmp_path) as site:
        # given the listing with a re-encoded copy of a gen-a clip in a later folder
        (site.root / "clips" / "gen-c").mkdir()
        media_factory.reencode(site.root / "clips" / "gen-a" / "clip 1.mp4", site.root / "clips" / "gen-c" / "copy.mp4",
                               width=128)
        source = {"name": "web", "url": site.url("listing"), "allow_private": True, "label": "fake",
                  "generator_from_path": GENERATOR_FROM_PATH}
        # when `vigil crawl` runs (one download at a time, so the original comes first), then again
        first = _vigil_crawl(tmp_path, [source], concurrency=1)
        second = _vigil_crawl(tmp_path, [source], concurrency=1)
    # then the first run names the near-duplicate and what it nearly duplicates
    text = " ".join(first.output.split())
    assert first.exit_code == 0, first.output
    assert (f"near-duplicate: {site.base_url}/clips/gen-c/copy.mp4 ≈ {site.base_url}/clips/gen-a/clip%201.mp4"
            in text), first.output
    assert "6 stored" in text and "source web: 5 page(s)" in text
    # and the re-crawl says every media URL is already known, in the summary and for the source
    again = " ".join(second.output.split())
    assert second.exit_code == 0, second.output
    assert "0 stored" in again and "7 already known" in again
    assert "source web:" in again and "all 7 media URL(s) were crawled before (already known)" in again
    # and the ledger's crawl.run events carry each source's outcome
    from vigil.io.ledger import read_events

    runs = [e for e in read_events(LocalStore(tmp_path / "ws" / "store")) if e.action == "crawl.run"]
    assert [(e.outputs["sources"][0]["stored"], e.outputs["already_known"]) for e in runs] == [(6, 0), (0, 7)]
    assert "already known" in runs[1].outputs["sources"][0]["why_nothing"]


def test_cli_exits_non_zero_when_no_source_can_be_reached(tmp_path):
    import socket

    # given a source on a loopback port where nothing listens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _vigil_crawl(tmp_path, [{"name": "gone", "url": f"http://127.0.0.1:{port}/clips/", "allow_private": True}])
    # then it ends with the service-unavailable exit code, naming the source, why, and the setting
    text = " ".join(result.output.split())
    assert result.exit_code == ServiceError.exit_code, result.output
    assert "no crawl source could be reached" in text and "gone" in text and "not reached" in text
    assert "the url of each of these crawl.sources" in text and "Traceback" not in result.output
