"""Production deployments: the cycle's data plane on the crawl schedule, each step on demand.
``vigil flows serve`` serves them; ``flows/`` in the checkout holds the same flows as entrypoints."""

from __future__ import annotations

from vigil.config.params import Params
from vigil.flows.annotate import annotate_flow
from vigil.flows.crawl import crawl_flow
from vigil.flows.cycle import cycle_flow
from vigil.flows.ingest import ingest_flow


def build_deployments(params: Params, params_file: str | None = "params.yaml") -> list:
    """Deployments for ``prefect.serve``: the data plane (the cycle without training) on
    ``crawl.schedule_cron``; crawl, ingest and annotate on demand."""
    file_only = {"params_file": params_file}
    return [
        cycle_flow.to_deployment(name="data-plane-scheduled", cron=params.crawl.schedule_cron,
                                 parameters={**file_only, "train": False}),
        crawl_flow.to_deployment(name="crawl-on-demand", parameters=file_only),
        ingest_flow.to_deployment(name="ingest-on-demand", parameters=file_only),
        annotate_flow.to_deployment(name="annotate-on-demand", parameters=file_only),
    ]
