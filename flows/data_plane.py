"""The main job for now: crawl → ingest (validate, version, push). Later issues extend it."""

from __future__ import annotations

from prefect import flow

from flows.crawl import crawl_flow
from flows.ingest import ingest_flow


@flow(name="data-plane")
def data_plane_flow(params_file: str | None = None) -> dict:
    """Crawl the configured sources, then ingest what was crawled into a new dataset version."""
    crawl = crawl_flow(params_file)
    ingested = ingest_flow(params_file)
    return {"crawl": crawl, "ingest": ingested}
