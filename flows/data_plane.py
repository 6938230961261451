"""The main job for now: crawl → ingest → annotate (validate, version, push). Later issues extend it."""

from __future__ import annotations

from prefect import flow

from flows.annotate import annotate_flow
from flows.crawl import crawl_flow
from flows.ingest import ingest_flow


@flow(name="data-plane")
def data_plane_flow(params_file: str | None = None) -> dict:
    """Crawl the sources, ingest into a new dataset version, then annotate it into a labelled version."""
    crawl = crawl_flow(params_file)
    ingested = ingest_flow(params_file)
    if ingested["status"] == "rejected":
        return {"crawl": crawl, "ingest": ingested, "annotate": None}
    annotated = annotate_flow(params_file)
    return {"crawl": crawl, "ingest": ingested, "annotate": annotated}
