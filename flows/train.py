"""Prefect entrypoint: `flows/train.py:train_flow` (the flow is :mod:`vigil.flows.train`)."""

from vigil.flows.train import train_flow

__all__ = ["train_flow"]
