"""Prefect entrypoint: `flows/ingest.py:ingest_flow` (the flow is :mod:`vigil.flows.ingest`)."""

from vigil.flows.ingest import ingest_flow

__all__ = ["ingest_flow"]
