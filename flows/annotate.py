"""Prefect entrypoint: `flows/annotate.py:annotate_flow` (the flow is :mod:`vigil.flows.annotate`)."""

from vigil.flows.annotate import annotate_flow

__all__ = ["annotate_flow"]
