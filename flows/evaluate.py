"""Prefect entrypoint: `flows/evaluate.py:evaluate_flow` (the flow is :mod:`vigil.flows.evaluate`)."""

from vigil.flows.evaluate import evaluate_flow

__all__ = ["evaluate_flow"]
