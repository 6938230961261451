"""Teacher annotator: label-conditioned distillation from any OpenAI-compatible chat endpoint.

Ivy-Fake (seed 001) distils explanations by telling a strong model the ground-truth label ("This
video is fake. Explain the reason.") and drops the distillations that do not follow the output
format. We do the same against whatever serves ``/chat/completions`` (an open model under vLLM, a
hosted API), with the frames laid out as Skyra (seed 000) feeds them: a ``[T=x.xxs]`` text part
before each frame image. Every reply is checked by :mod:`vigil.core.grammar` (the one parser the
rewards, evaluator and gateway also use) plus a label-contradiction check; a non-compliant reply
is sent back with its violations quoted, a few times, and then rejected rather than repaired by
hand. A rejected annotation is still a record (with the reason), so that a batch never loses a
sample silently and an auditor can see what the teacher got wrong.

Plain httpx, no SDK: one shared ``AsyncClient``, bounded concurrency, a requests-per-minute
limiter, and transport retries (429, 5xx, timeouts) with exponential backoff that honours
``Retry-After``. One bad sample never raises out of a batch.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from vigil.config.errors import ServiceError
from vigil.core import grammar
from vigil.core.annotation import AnnotatedArtifact, Annotation, Provenance, Usage
from vigil.core.http import parse_retry_after
from vigil.core.progress import ProgressCallback
from vigil.core.taxonomy import Taxonomy, load_taxonomy
from vigil.io.media.frame_folder import read_frames
from vigil.io.pacing import RateLimiter
from vigil.models.inputs import subsample

log = logging.getLogger(__name__)


# Transport statuses worth another try: rate limited, or the server (or a proxy before it) failed.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

# The rule restated in every repair request, so that the teacher sees what it must produce without
# relying on it re-reading the (long) system prompt.
GRAMMAR_RULE = (
    "Answer in exactly this form: <think>reasoning; for every artifact write "
    "<type>L3 artifact name</type> in <t>[start_s, end_s]</t> at <bbox>[x1, y1, x2, y2]</bbox> "
    "(times in seconds within the clip, box normalised to 0-1)</think><answer>Real|Fake</answer>. "
    "Artifact names must come from the taxonomy in the system prompt."
)


def _help(text: str, default: Any) -> Any:
    """A dataclass field whose help text travels with it (CLI and docs read ``metadata['help']``)."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class TeacherConfig:
    """Where the teacher lives, how hard to push it, and what it costs."""

    base_url: str = field(metadata={"help": "OpenAI-compatible API root, e.g. http://vllm:8000/v1 "
                                            "(the client POSTs {base_url}/chat/completions)."})
    model: str = field(metadata={"help": "Model name sent in each request; recorded as the annotator."})
    api_key: str | None = field(default=None, repr=False, metadata={
        "help": "Bearer token, if the endpoint needs one. Never logged or put into error text."})
    max_concurrency: int = _help("Requests in flight at once across the batch.", 4)
    requests_per_minute: float = _help(
        "Rate limit on request starts (retries and repairs included); 0 disables it.", 120.0)
    timeout_s: float = _help("Timeout of one HTTP request, seconds; a timeout counts as a transport "
                             "failure and is retried.", 120.0)
    max_retries: int = _help("Transport retries per request (429, 5xx, timeouts, connection errors).", 4)
    backoff_s: float = _help("First retry delay, seconds; doubles each retry (plus up to 10 % jitter).", 1.0)
    max_backoff_s: float = _help("Cap on one retry delay, seconds, the server's Retry-After included.", 60.0)
    max_repairs: int = _help("Repair rounds after a reply that breaks the grammar or contradicts the "
                             "label; still bad afterwards means rejected (as Ivy-Fake drops them).", 2)
    temperature: float = _help("Sampling temperature.", 0.2)
    max_tokens: int = _help("Completion token cap per reply.", 1024)
    max_frames: int = _help("Most frames sent per clip; more are subsampled evenly.", 16)
    cost_per_1k_prompt_tokens: float = _help("Price in USD per 1000 prompt tokens (0 for self-hosted).", 0.0)
    cost_per_1k_completion_tokens: float = _help("Price in USD per 1000 completion tokens.", 0.0)
    prompt_version: str = _help("Version of prompt + grammar recorded in provenance (staleness key).",
                                grammar.PROMPT_VERSION)
    annotator_version: str = _help("Version of this annotator setup (model revision, settings) "
                                   "recorded in provenance.", "1")

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.max_retries < 0 or self.max_repairs < 0:
            raise ValueError("max_retries and max_repairs must be >= 0")
        if self.requests_per_minute < 0:
            raise ValueError(f"requests_per_minute must be >= 0, got {self.requests_per_minute}")

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.cost_per_1k_prompt_tokens
                + completion_tokens * self.cost_per_1k_completion_tokens) / 1000.0


@dataclass(frozen=True)
class TeacherRequest:
    """One clip to explain: its id, its ground-truth label, its duration and its frame folder."""

    sample_id: str
    label: Literal["real", "fake"]
    duration_s: float | None
    frames_dir: Path | str


# --------------------------------------------------------------------------------------- prompt

def instruction(label: str) -> str:
    """Ivy-Fake's label-conditioned distillation prompt, extended with Skyra's grounding."""
    word = "Real" if label.lower() == "real" else "Fake"
    return (f"This video is {word}. Explain the reason, grounding each artifact with its type, "
            f"time span and box.")


def build_messages(label: str, frames_dir: Path | str, *, max_frames: int,
                   taxonomy: Taxonomy | None = None) -> list[dict]:
    """Chat messages for one clip: the grammar's system prompt, then the label-conditioned
    instruction followed by ``[T=x.xxs]`` + image for each (evenly subsampled) frame."""
    frames = read_frames(frames_dir)
    content: list[dict] = [{"type": "text", "text": instruction(label)}]
    for i in subsample(len(frames), max_frames):
        t, png = frames[i]
        uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
        content.append({"type": "text", "text": f"[T={t:.2f}s]"})
        content.append({"type": "image_url", "image_url": {"url": uri}})
    return [{"role": "system", "content": grammar.system_prompt(taxonomy)},
            {"role": "user", "content": content}]


def repair_message(violations: Sequence[tuple[str, str]], label: str) -> dict:
    """The user turn that sends a non-compliant reply back: each violation quoted, the rule restated."""
    word = "Real" if label.lower() == "real" else "Fake"
    lines = ["Your answer does not follow the required format. Violations:"]
    lines += [f"- {code}: {detail}" for code, detail in violations]
    lines.append(GRAMMAR_RULE)
    lines.append(f"This video is {word}: the answer must be <answer>{word}</answer>. "
                 f"Write the whole answer again.")
    return {"role": "user", "content": "\n".join(lines)}


# ------------------------------------------------------------------------------------ transport

class TransportError(ServiceError):
    """The endpoint could not give a reply after retries (message is safe to record: no secrets)."""


@dataclass(frozen=True)
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int


def _backoff(attempt: int, config: TeacherConfig, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(config.max_backoff_s, retry_after)
    return min(config.max_backoff_s, config.backoff_s * (2 ** attempt) * (1.0 + 0.1 * random.random()))


def _headers(config: TeacherConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def _scrub(text: str, config: TeacherConfig) -> str:
    """Belt and braces: an error body could echo the request headers back."""
    return text.replace(config.api_key, "***") if config.api_key else text


async def _chat(messages: list[dict], config: TeacherConfig, client: httpx.AsyncClient,
                limiter: RateLimiter, sample_id: str) -> _Reply:
    """One chat completion, retried on transport trouble; raises TransportError when out of tries."""
    body = {"model": config.model, "messages": messages, "temperature": config.temperature,
            "max_tokens": config.max_tokens}
    last = "no attempt"
    for attempt in range(config.max_retries + 1):
        retry_after: float | None = None
        await limiter.acquire()
        try:
            response = await client.post(config.chat_url, json=body, headers=_headers(config),
                                         timeout=config.timeout_s)
        except httpx.TimeoutException as exc:
            last = f"timeout after {config.timeout_s:g}s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {_scrub(str(exc), config)}"
        else:
            if response.status_code == 200:
                return _parse_completion(response, config)
            detail = _scrub(response.text[:200], config).strip()
            last = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
            if response.status_code not in _RETRY_STATUSES:
                raise TransportError(last)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        if attempt < config.max_retries:
            delay = _backoff(attempt, config, retry_after)
            log.warning("teacher %s: %s; retry %d/%d in %.2fs", sample_id[:12], last, attempt + 1,
                        config.max_retries, delay)
            await asyncio.sleep(delay)
    raise TransportError(f"{last} (after {config.max_retries + 1} tries)")


def _parse_completion(response: httpx.Response, config: TeacherConfig) -> _Reply:
    try:
        doc = response.json()
        text = doc["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise TransportError(f"malformed completion ({type(exc).__name__}): "
                             f"{_scrub(response.text[:200], config)}") from None
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    usage = doc.get("usage") or {}
    return _Reply(text=text or "", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                  completion_tokens=int(usage.get("completion_tokens") or 0))


# ----------------------------------------------------------------------------------- annotation

# Codes the teacher adds on top of the grammar's: what makes a grammatical reply unusable as a
# training annotation.
TEACHER_CODES = frozenset({
    "label_contradiction",  # the answer is not the label the teacher was told
    "wrong_style",          # Ivy-style <conclusion>: annotations are stored in Skyra's <answer> form
    "ungrounded_evidence",  # an artifact without a time span, or a typed one without a box
    "no_evidence",          # a Fake verdict with no grounded, typed artifact to learn from
})


def check_reply(text: str, label: str, duration_s: float | None,
                taxonomy: Taxonomy | None = None) -> tuple[grammar.ParsedOutput, list[tuple[str, str]]]:
    """Grammar check plus the teacher's own checks (:data:`TEACHER_CODES`): a teacher told the
    clip is fake must answer Fake, in the stored style, and ground what it claims (an annotation
    record needs a time span per artifact; a fake without artifacts teaches no grounding)."""
    parsed = grammar.check(text, duration_s=duration_s, taxonomy=taxonomy)
    problems = [(v.code, v.detail) for v in parsed.violations]
    want = label.lower()
    if parsed.label is not None and parsed.label != want:
        problems.append(("label_contradiction",
                         f"answered {parsed.answer} but this video is {want.capitalize()}"))
    if parsed.style == "ivy":
        problems.append(("wrong_style", "use <answer>Real|Fake</answer>, not <conclusion>"))
    for i, ev in enumerate(parsed.evidence):
        if ev.t is None or (ev.type is not None and ev.bbox is None):
            missing = "time span" if ev.t is None else "box"
            problems.append(("ungrounded_evidence",
                             f"evidence {i} ({ev.type or 'untyped'}) has no {missing}"))
    if want == "fake" and not any(ev.type and ev.well_formed for ev in parsed.evidence):
        problems.append(("no_evidence", "a Fake answer needs at least one <type>…</type> in "
                                        "<t>[s, e]</t> at <bbox>[x1, y1, x2, y2]</bbox>"))
    return parsed, problems


def _artifacts(parsed: grammar.ParsedOutput) -> tuple[AnnotatedArtifact, ...]:
    # check_reply rejected every evidence without a time span, so each one here has t.
    return tuple(AnnotatedArtifact(type=ev.type, t=ev.t, bbox=ev.bbox)
                 for ev in parsed.evidence if ev.t is not None)


async def annotate_sample(request: TeacherRequest, config: TeacherConfig, *,
                          client: httpx.AsyncClient, limiter: RateLimiter,
                          taxonomy: Taxonomy | None = None) -> Annotation:
    """Ask the teacher to explain one clip under its known label; accepted or rejected, never raises
    for a problem of this sample (bad frames, transport, non-compliant replies)."""
    tax = taxonomy or load_taxonomy()
    label = request.label.lower()
    started = time.monotonic()
    prompt_tokens = completion_tokens = replies = 0
    provenance = Provenance(kind="teacher", annotator=config.model, prompt_version=config.prompt_version,
                            taxonomy_version=tax.version, annotator_version=config.annotator_version)

    def record(**kw: Any) -> Annotation:
        usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      attempts=max(replies, 1),
                      cost_usd=config.cost_usd(prompt_tokens, completion_tokens),
                      latency_s=time.monotonic() - started)
        return Annotation(sample_id=request.sample_id, label=label, provenance=provenance, usage=usage, **kw)

    try:
        messages = await asyncio.to_thread(build_messages, label, request.frames_dir,
                                           max_frames=config.max_frames, taxonomy=taxonomy)
    except (OSError, ValueError) as exc:
        log.warning("teacher %s: rejected, frames: %s", request.sample_id[:12], exc)
        return record(explanation="", status="rejected", rejection_reason=f"frames: {exc}")

    text = ""
    problems: list[tuple[str, str]] = []
    for round_ in range(config.max_repairs + 1):
        if round_:
            messages = [*messages, {"role": "assistant", "content": text}, repair_message(problems, label)]
        try:
            reply = await _chat(messages, config, client, limiter, request.sample_id)
        except TransportError as exc:
            log.warning("teacher %s: rejected, transport: %s", request.sample_id[:12], exc)
            return record(explanation=text, status="rejected", rejection_reason=f"transport: {exc}",
                          violations=tuple(dict.fromkeys(c for c, _ in problems)))
        replies += 1
        prompt_tokens += reply.prompt_tokens
        completion_tokens += reply.completion_tokens
        text = reply.text
        parsed, problems = check_reply(text, label, request.duration_s, taxonomy)
        if not problems:
            log.debug("teacher %s: accepted after %d repair(s)", request.sample_id[:12], round_)
            return record(explanation=text, artifacts=_artifacts(parsed))
        log.debug("teacher %s: reply %d broke the rules: %s", request.sample_id[:12], round_ + 1,
                 ", ".join(c for c, _ in problems))

    codes = tuple(dict.fromkeys(c for c, _ in problems))
    return record(explanation=text, status="rejected", violations=codes,
                  rejection_reason=f"non-compliant after {config.max_repairs} repair(s): {', '.join(codes)}")


async def annotate_batch(requests: Iterable[TeacherRequest], config: TeacherConfig, *,
                         progress: ProgressCallback | None = None,
                         taxonomy: Taxonomy | None = None,
                         client: httpx.AsyncClient | None = None) -> list[Annotation]:
    """Annotate many clips with at most ``max_concurrency`` in flight and one shared rate limiter;
    results come back in request order. ``progress(event, done, total)`` gets ``"start"`` once, then
    ``"accepted"`` or ``"rejected"`` as each clip finishes."""
    items = list(requests)
    total = len(items)
    limiter = RateLimiter(config.requests_per_minute)
    semaphore = asyncio.Semaphore(config.max_concurrency)
    done = 0

    def report(event: str) -> None:
        if progress is None:
            return
        try:
            progress(event, done, total)
        except Exception:  # a broken progress bar must not lose the batch
            log.exception("progress callback failed")

    async def one(req: TeacherRequest, http: httpx.AsyncClient) -> Annotation:
        nonlocal done
        async with semaphore:
            ann = await annotate_sample(req, config, client=http, limiter=limiter, taxonomy=taxonomy)
        done += 1
        report(ann.status)
        return ann

    report("start")
    limits = httpx.Limits(max_connections=config.max_concurrency,
                          max_keepalive_connections=config.max_concurrency)
    if client is not None:
        results = await asyncio.gather(*(one(r, client) for r in items))
    else:
        async with httpx.AsyncClient(timeout=config.timeout_s, limits=limits) as http:
            results = await asyncio.gather(*(one(r, http) for r in items))
    accepted = sum(a.status == "accepted" for a in results)
    log.info("teacher %s: %d/%d accepted", config.model, accepted, total)
    return list(results)


def annotate_batch_sync(requests: Iterable[TeacherRequest], config: TeacherConfig, *,
                        progress: ProgressCallback | None = None,
                        taxonomy: Taxonomy | None = None) -> list[Annotation]:
    """Blocking :func:`annotate_batch` for flows, the CLI and tests; works inside a running event
    loop too (it then runs the batch on its own thread, since a loop cannot be re-entered)."""
    coro_args = (list(requests), config)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(annotate_batch(*coro_args, progress=progress, taxonomy=taxonomy))
    result: list[list[Annotation]] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(annotate_batch(*coro_args, progress=progress, taxonomy=taxonomy)))
        except BaseException as exc:  # re-raised on the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="teacher-batch")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
