"""Claims are capped: a page that claims a 100,000-character prompt (or a huge generator name, licence,
artifact list) gets a bounded provenance record that says what was cut, and the clip is still kept."""

from __future__ import annotations

import pytest

from tests.support import media_factory
from tests.support.crawl_servers import (
    fast_params,
    fault_server,
    file,
    html,
    item_page,
    json_doc,
    listing_page,
    records,
    source,
)
from vigil.core.records import MAX_ARTIFACTS, MAX_PROMPT_CHARS, MAX_SHORT_CLAIM_CHARS, TRUNCATION_MARKER
from vigil.crawl import crawl
from vigil.io.store import LocalStore

HUGE_PROMPT = "a cat on a skateboard, " * 4348  # 100,004 characters
ARTIFACT = {"type": "Texture Flicker", "t": [0.1, 0.5], "bbox": [0.1, 0.1, 0.5, 0.5]}


@pytest.fixture
def site_with_huge_claims(tmp_path):
    clip = media_factory.make_clip(tmp_path, "c.mp4", seed=7, n_frames=12)
    with fault_server() as server:
        server.route("/", html(listing_page(["/items/x"])))
        server.route("/items/x", html(item_page("/media/x.mp4", "/items/x.json")))
        server.route("/media/x.mp4", file(clip))
        server.route("/items/x.json", json_doc({
            "item_id": "x", "label": "fake", "media_url": "/media/x.mp4",
            "prompt": HUGE_PROMPT, "generator": "g" * 5000, "licence": "L" * 1000, "pair_id": "p" * 300,
            "published_at": "2025-01-01T00:00:00Z",
            "artifacts": [{**ARTIFACT, "type": "T" * 999}] + [ARTIFACT] * 500,
        }))
        yield server


def test_a_huge_prompt_and_other_claims_are_capped_and_the_cut_is_recorded(site_with_huge_claims, tmp_path):
    store = LocalStore(tmp_path / "store")
    # when a site whose metadata claims a 100,000-character prompt is crawled
    report = crawl([source(site_with_huge_claims)], fast_params(), store, tmp_path / "state")
    # then the clip is kept, and its provenance record holds at most the caps
    assert report.stored == 1
    [record] = records(store)
    assert len(HUGE_PROMPT) > 100_000
    assert len(record.prompt) <= MAX_PROMPT_CHARS and record.prompt.endswith(TRUNCATION_MARKER)
    assert record.prompt.startswith("a cat on a skateboard, ")
    assert len(record.generator) <= MAX_SHORT_CLAIM_CHARS and len(record.licence) <= MAX_SHORT_CLAIM_CHARS
    assert len(record.pair_id) <= MAX_SHORT_CLAIM_CHARS and record.published_at == "2025-01-01T00:00:00Z"
    assert len(record.artifacts) == MAX_ARTIFACTS
    # and the record says which claims were cut and how long they were
    cut = {t.field: (t.original_length, t.kept) for t in record.truncated}
    assert cut == {"prompt": (len(HUGE_PROMPT), len(record.prompt)), "generator": (5000, len(record.generator)),
                   "licence": (1000, len(record.licence)), "pair_id": (300, len(record.pair_id)),
                   "artifacts": (501, MAX_ARTIFACTS), "artifacts[0].type": (999, MAX_SHORT_CLAIM_CHARS)}
    assert len(record.artifacts[0].type) == MAX_SHORT_CLAIM_CHARS
    # and so does the crawl report
    assert any("prompt is 100004 characters" in p.detail for p in report.problems)
    # and the stored JSON itself is small
    [key] = store.list_keys("provenance/")
    assert len(store.get_bytes(key)) < 20_000


def test_ordinary_claims_are_kept_whole_and_nothing_is_marked(tmp_path):
    from tests.support.crawl_servers import publish_items

    store = LocalStore(tmp_path / "store")
    with fault_server() as server:
        publish_items(server, {"a": media_factory.make_clip(tmp_path, "a.mp4", seed=8, n_frames=12)})
        crawl([source(server)], fast_params(), store, tmp_path / "state")
    [record] = records(store)
    assert record.prompt == "a clip called a" and record.truncated == ()
