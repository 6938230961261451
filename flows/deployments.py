"""Production deployments: the crawl on its cron schedule, ingest after it. ``vigil flows serve``."""

from __future__ import annotations

from flows.annotate import annotate_flow
from flows.crawl import crawl_flow
from flows.data_plane import data_plane_flow
from flows.ingest import ingest_flow
from vigil.params import Params


def build_deployments(params: Params, params_file: str = "params.yaml") -> list:
    """Deployments for ``prefect.serve``: the data plane on ``crawl.schedule_cron``; crawl and ingest on demand."""
    return [
        data_plane_flow.to_deployment(name="data-plane-scheduled", cron=params.crawl.schedule_cron,
                                      parameters={"params_file": params_file}),
        crawl_flow.to_deployment(name="crawl-on-demand", parameters={"params_file": params_file}),
        ingest_flow.to_deployment(name="ingest-on-demand", parameters={"params_file": params_file}),
        annotate_flow.to_deployment(name="annotate-on-demand", parameters={"params_file": params_file}),
    ]
