"""Prefect entrypoint: `flows/crawl.py:crawl_flow` (the flow is :mod:`vigil.flows.crawl`)."""

from vigil.flows.crawl import crawl_flow

__all__ = ["crawl_flow"]
