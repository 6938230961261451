"""The ``annotate`` flow: explain the newest dataset version's clips and publish a labelled version.

Another annotation run on the workspace (the annotate job, a Label Studio import or export) is a
refusal, not a crash: as in the crawl flow (:mod:`vigil.flows.crawl`), the flow takes the workspace's
annotate lock before its task starts and ends Failed with the lock's message, no traceback and no retry.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext
from prefect.states import State

from vigil.config.settings import load_settings
from vigil.core.hashing import sha256_json
from vigil.core.progress import periodic_lines
from vigil.flows.resources import ANNOTATE_POLICY, refused, snapshot_ref, task_runtime
from vigil.io.git import list_tags
from vigil.io.ledger import code_revision
from vigil.io.locks import WorkspaceBusy, workspace_lock
from vigil.jobs.annotate import ANNOTATE_LOCK, AnnotateReport, annotate
from vigil.jobs.runtime import load_runtime, teacher_endpoint


def annotate_cache_key(context: TaskRunContext, arguments: dict) -> str:
    """Same dataset versions + same annotation records + same params, code and teacher = same result.

    Per-sample caching by (sample, annotator, prompt version) lives in the store itself: a sample
    with a current record from this annotator is never sent to the teacher again.
    """
    rt = load_runtime(params_ref=arguments["params_ref"], check_store=False)
    teacher = teacher_endpoint(rt.settings)
    return sha256_json({
        "registry_tags": list_tags(rt.workspace / "registry"),
        "annotations": list(rt.store.list_keys("annotations/")), "flags": list(rt.store.list_keys("annotation-flags/")),
        "params": rt.params_hash, "code": code_revision(),
        "teacher": [teacher.url, teacher.model] if teacher else None, "store": rt.store.describe(),
        "reannotate": arguments.get("reannotate"), "predictions": arguments.get("predictions"),
    })


@task(name="annotate-version", cache_key_fn=annotate_cache_key, persist_result=True, **ANNOTATE_POLICY)
def annotate_version(params_ref: str, reannotate: bool = False, predictions: str | None = None) -> AnnotateReport:
    # Safe to retry: records already written are reused; teacher concurrency is bounded inside.
    rt, logger = task_runtime(params_ref), get_run_logger()
    report = annotate(rt, teacher=teacher_endpoint(rt.settings), reannotate=reannotate, predictions=predictions,
                      progress=periodic_lines("annotate", logger.info))
    logger.info("annotate: %s", report.summary())
    return report


@flow(name="annotate")
def annotate_flow(params_file: str | None = None, params_ref: str | None = None, reannotate: bool = False,
                  predictions: str | None = None) -> AnnotateReport | State:
    """Annotate what needs it (synthetic, or the teacher at VIGIL_TEACHER_URL) and publish a labelled version;
    refused (Failed, WorkspaceBusy) while another annotation run holds the workspace."""
    ref = snapshot_ref(params_file, params_ref)
    try:
        with workspace_lock(load_settings().workspace_path, ANNOTATE_LOCK):  # re-entered by the job, same thread
            return annotate_version(ref, reannotate, predictions)
    except WorkspaceBusy as exc:
        return refused("annotate", exc)
