"""The main job as one flow: crawl → ingest → annotate → train → gate, with the parameters loaded once.

Later issues add promotion, serving and monitoring to the same flow. A rejected batch or labelled
version stops the cycle before training; a refused candidate is a verdict, not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from vigil.core.model_version import ModelVersion
from vigil.crawl.crawler import CrawlReport
from vigil.flows.annotate import annotate_flow
from vigil.flows.crawl import crawl_flow
from vigil.flows.evaluate import evaluate_flow
from vigil.flows.ingest import ingest_flow
from vigil.flows.resources import snapshot_ref
from vigil.flows.train import train_flow
from vigil.jobs.annotate import AnnotateReport
from vigil.jobs.evaluate import GateOutcome
from vigil.jobs.ingest import IngestReport


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did, step by step (None: the step did not run)."""

    params_hash: str
    crawl: CrawlReport
    ingest: IngestReport
    annotate: AnnotateReport | None = None
    train: ModelVersion | None = None
    gate: GateOutcome | None = None

    @property
    def rejected(self) -> bool:
        """Validation refused the new batch or its annotations: nothing was trained."""
        return self.ingest.status == "rejected" or (self.annotate is not None and self.annotate.status == "rejected")


@flow(name="cycle")
def cycle_flow(params_file: str | None = None, params_ref: str | None = None, train: bool = True,
               gate: bool = True) -> CycleReport:
    """Crawl the sources, ingest a dataset version, annotate it, train a candidate and gate it."""
    ref = snapshot_ref(params_file, params_ref)
    crawled = crawl_flow(params_ref=ref)
    ingested = ingest_flow(params_ref=ref)
    if ingested.status == "rejected":
        return CycleReport(ref, crawled, ingested)
    annotated = annotate_flow(params_ref=ref)
    report = CycleReport(ref, crawled, ingested, annotated)
    if not train or report.rejected:
        return report
    candidate = train_flow(params_ref=ref)
    outcome = evaluate_flow(candidate.version_id, params_ref=ref) if gate else None
    return CycleReport(ref, crawled, ingested, annotated, candidate, outcome)
