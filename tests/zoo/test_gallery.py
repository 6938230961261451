"""The zoo's gallery web site, exercised over real HTTP on loopback."""

from __future__ import annotations

import io
import math
import re
import threading
from datetime import timedelta
from urllib.robotparser import RobotFileParser

import av
import httpx
import numpy as np
import pytest

from vigil.core.taxonomy import load_taxonomy
from vigil.zoo.catalog import DEFAULT_EPOCH, ZooConfig, build_catalog
from vigil.zoo.gallery import GalleryServer, prerender

CONFIG = ZooConfig(pairs_per_generator=2, generators=("lumen-v1", "driftwave-2", "mirage-xl"),
                   duration_s=(2.0, 2.0))
NOW = DEFAULT_EPOCH + timedelta(days=100)  # after all three releases
PAGE_SIZE = 5
FEED_SIZE = 4
ITEM_KEYS = {"item_id", "pair_id", "generator", "label", "prompt", "licence", "published_at",
             "media_url", "mask_url", "fps", "width", "height", "duration_s", "artifacts"}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gallery-cache")
    with GalleryServer(cache, CONFIG, clock=lambda: NOW, page_size=PAGE_SIZE,
                       feed_size=FEED_SIZE) as server:
        yield server


@pytest.fixture(scope="module")
def client(gallery):
    with httpx.Client(base_url=gallery.url, timeout=30) as c:
        yield c


def _crawl_pages(client: httpx.Client) -> tuple[list[str], int]:
    """Follow rel=next from the home page; return item ids in page order and the page count."""
    ids, url, pages = [], "/", 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        pages += 1
        ids += re.findall(r'href="/items/([\w-]+)"', response.text)
        link = re.search(r'<link rel="next" href="([^"]+)"', response.text)
        anchor = re.search(r'<a rel="next" href="([^"]+)"', response.text)
        assert (link is None) == (anchor is None)
        url = link.group(1) if link else None
        assert pages < 50
    return ids, pages


def test_robots_txt_disallows_private_but_private_exists(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    robots = RobotFileParser()
    robots.parse(response.text.splitlines())
    assert not robots.can_fetch("vigil-crawler", "/private/drafts")
    assert robots.can_fetch("vigil-crawler", "/page/2")
    assert robots.can_fetch("vigil-crawler", "/media/x.mp4")
    assert client.get("/private/drafts").status_code == 200


def test_pagination_reaches_every_visible_item_once_newest_first(gallery, client):
    # when a crawler follows rel=next from the home page
    ids, pages = _crawl_pages(client)
    visible = gallery.visible_items()
    # then it sees every visible item exactly once, newest first, in page_size pages
    assert len(visible) == len(build_catalog(CONFIG))
    assert sorted(ids) == sorted(i.item_id for i in visible) and len(set(ids)) == len(ids)
    assert pages == math.ceil(len(visible) / PAGE_SIZE)
    by_id = {i.item_id: i for i in visible}
    times = [by_id[i].published_at for i in ids]
    assert times == sorted(times, reverse=True)
    # /page/1 is the home page, and past the last page is a 404
    assert client.get("/page/1").text == client.get("/").text
    assert client.get(f"/page/{pages + 1}").status_code == 404
    assert client.get("/page/0").status_code == 404


def test_feed_lists_the_newest_items_with_metadata(gallery, client):
    response = client.get("/feed.json")
    assert response.status_code == 200 and "json" in response.headers["content-type"]
    feed = response.json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    newest = gallery.visible_items()[:FEED_SIZE]
    assert [e["id"] for e in feed["items"]] == [i.item_id for i in newest]
    for entry in feed["items"]:
        assert entry["url"] == f"{gallery.url}/items/{entry['id']}"
        assert entry["date_published"].endswith("Z")
        assert ITEM_KEYS <= set(entry["_vigil"])
        assert client.get(entry["url"]).status_code == 200
    dates = [e["date_published"] for e in feed["items"]]
    assert dates == sorted(dates, reverse=True)


def test_item_page_and_metadata(gallery, client):
    taxonomy = load_taxonomy()
    for item in gallery.visible_items()[:6]:
        page = client.get(f"/items/{item.item_id}")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert f'<video src="/media/{item.item_id}.mp4"' in page.text
        assert item.generator in page.text and item.licence in page.text
        meta = client.get(f"/items/{item.item_id}.json").json()
        assert ITEM_KEYS <= set(meta)
        assert (meta["item_id"], meta["pair_id"], meta["label"]) == (
            item.item_id, item.pair_id, item.label)
        assert (meta["width"], meta["height"], meta["fps"]) == (160, 120, 8.0)
        assert meta["duration_s"] == pytest.approx(2.0)
        if item.label == "fake":
            assert meta["artifacts"]
        else:
            assert meta["artifacts"] == []
        for artifact in meta["artifacts"]:
            assert taxonomy.is_l3(artifact["type"])
            x1, y1, x2, y2 = artifact["bbox"]
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
            assert 0 <= artifact["t"][0] < artifact["t"][1] <= meta["duration_s"]


def test_media_decodes_and_supports_head_and_ranges(gallery, client):
    item = next(i for i in gallery.visible_items() if i.label == "fake")
    meta = client.get(f"/items/{item.item_id}.json").json()
    media = client.get(meta["media_url"])
    assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"
    assert int(media.headers["content-length"]) == len(media.content)
    head = client.head(meta["media_url"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == media.headers["content-length"]
    with av.open(io.BytesIO(media.content)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == item.n_frames == 16
    assert frames[0].shape == (120, 160, 3)
    partial = client.get(meta["media_url"], headers={"Range": "bytes=10-29"})
    assert partial.status_code == 206 and partial.content == media.content[10:30]
    masks = client.get(meta["mask_url"])
    assert masks.status_code == 200
    with np.load(io.BytesIO(masks.content)) as npz:
        assert npz["masks"].shape == (len(meta["artifacts"]), 16, 120, 160)
        assert npz["masks"].dtype == bool and npz["masks"].any()


def test_unknown_paths_are_404(client):
    for path in ("/items/nope", "/items/nope.json", "/media/nope.mp4", "/masks/nope.npz", "/x"):
        assert client.get(path).status_code == 404


def test_concurrent_requests_render_an_item_once(tmp_path):
    config = ZooConfig(pairs_per_generator=1, generators=("kinetica-1.5",), duration_s=(2.0, 2.0))
    with GalleryServer(tmp_path, config, clock=lambda: NOW) as server:
        item = next(i for i in server.items if i.label == "fake")
        bodies: list[bytes] = []
        lock = threading.Lock()

        def fetch() -> None:
            body = httpx.get(f"{server.url}/media/{item.item_id}.mp4", timeout=30).content
            with lock:
                bodies.append(body)

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(bodies) == 8 and len(set(bodies)) == 1 and bodies[0]
        assert server.render_counts == {item.item_id: 1}
    # a second server on the same cache serves without rendering again
    with GalleryServer(tmp_path, config, clock=lambda: NOW) as again:
        assert httpx.get(f"{again.url}/media/{item.item_id}.mp4").content == bodies[0]
        assert again.render_counts == {}


def test_future_release_is_invisible_until_the_clock_passes_it(tmp_path):
    release = NOW + timedelta(hours=1)
    config = ZooConfig(pairs_per_generator=2, generators=("lumen-v1", "nova-6"),
                       duration_s=(2.0, 2.0), releases={"nova-6": release})
    now = [NOW]
    with GalleryServer(tmp_path, config, clock=lambda: now[0], page_size=3,
                       feed_size=20) as server, httpx.Client(base_url=server.url) as client:
        hidden = [i for i in server.items if i.pair_generator == "nova-6"]
        hidden_ids = {i.item_id for i in hidden}
        # before the release: not on any page, not in the feed, 404 by direct link
        ids, _ = _crawl_pages(client)
        assert hidden_ids.isdisjoint(ids) and len(ids) == 4
        assert hidden_ids.isdisjoint(e["id"] for e in client.get("/feed.json").json()["items"])
        for item in hidden:
            for path in (f"/items/{item.item_id}", f"/items/{item.item_id}.json",
                         f"/media/{item.item_id}.mp4", f"/masks/{item.item_id}.npz"):
                assert client.get(path).status_code == 404, path
        # after the clock passes the release of the first pair only
        now[0] = release + timedelta(minutes=1)
        ids, _ = _crawl_pages(client)
        first_pair = {i.item_id for i in hidden if i.pair_index == 0}
        assert first_pair <= set(ids) and len(ids) == 6
        assert {e["id"] for e in client.get("/feed.json").json()["items"][:2]} == first_pair
        for item_id in first_pair:
            assert client.get(f"/items/{item_id}.json").status_code == 200
        assert client.get(f"/media/{next(iter(first_pair))}.mp4").status_code == 200


def test_request_log_and_quiet_stderr(gallery, client, capfd):
    capfd.readouterr()
    client.get("/")
    client.get("/does-not-exist")
    captured = capfd.readouterr()
    assert captured.err == ""
    assert ("GET", "/does-not-exist") in gallery.requests


def test_prerender_renders_everything_with_progress(tmp_path):
    config = ZooConfig(pairs_per_generator=1, generators=("oneiro-3",), duration_s=(2.0, 2.0))
    calls = []
    rendered = prerender(tmp_path, config, progress=lambda done, total, item: calls.append(
        (done, total, item.item_id)))
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)]
    assert all(p.media_path.exists() and p.mask_path.exists() and p.meta_path.exists()
               for p in rendered)
    with GalleryServer(tmp_path, config, clock=lambda: NOW) as server:
        assert httpx.get(f"{server.url}/items/{calls[0][2]}.json").status_code == 200
        assert server.render_counts == {}


def test_embedded_gallery_keeps_its_url_across_runs_and_steps_aside_when_its_port_is_taken(tmp_path):
    from vigil.config.params import ZooParams
    from vigil.jobs.crawl import embedded_gallery

    zoo = ZooParams(pairs_per_generator=1, generators=("lumen-v1",))
    # given a workspace's gallery run once
    with embedded_gallery(zoo, tmp_path / "gallery") as first:
        pass
    # when it runs again, and once more while another gallery holds its port
    with embedded_gallery(zoo, tmp_path / "gallery") as second:
        with embedded_gallery(zoo, tmp_path / "gallery") as third:
            listing = httpx.get(third + "/", timeout=10)
    # then the re-run has the same URL (the crawl state knows its media), and the third still serves
    assert first == second
    assert third != second and listing.status_code == 200
