"""Prefect entrypoint: `flows/cycle.py:cycle_flow` (the flow is :mod:`vigil.flows.cycle`)."""

from vigil.flows.cycle import cycle_flow

__all__ = ["cycle_flow"]
