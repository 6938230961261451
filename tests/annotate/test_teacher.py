"""Teacher annotator against a scripted OpenAI-compatible server on loopback.

What must hold: a compliant reply becomes an accepted annotation with its evidence, tokens and cost;
a non-compliant one is sent back with its violations quoted and, if still bad, rejected with the
codes (Ivy-Fake drops such distillations); transport trouble (500, 429 + Retry-After, timeouts) is
retried; concurrency and rate stay bounded; frames go out in Skyra's ``[T=x.xxs]`` + image layout;
the API key goes out as a Bearer token and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import time
from dataclasses import fields, replace
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support import teacher_server as ts
from tests.support.pacing import assert_paced
from vigil.annotate.teacher import (
    TeacherConfig,
    TeacherRequest,
    annotate_batch,
    annotate_batch_sync,
    annotate_sample,
    build_messages,
    check_reply,
)
from vigil.core import grammar
from vigil.core.taxonomy import load_taxonomy
from vigil.io.pacing import RateLimiter
from vigil.models.inputs import subsample

SECRET = "sk-test-DO-NOT-LEAK-0123456789"


def make_frames(folder: Path, n: int = 4, fps: float = 4.0) -> Path:
    """A Skyra-layout frame folder: 1.png … n.png (each a distinct colour) + timestamps.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        Image.new("RGB", (32, 24), (i * 20 % 256, 255 - i * 15 % 256, i * 7 % 256)).save(folder / f"{i}.png")
    (folder / "timestamps.txt").write_text("".join(f"{(i - 1) / fps:.3f}\n" for i in range(1, n + 1)))
    return folder


def sid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@pytest.fixture
def server():
    with ts.teacher_server() as s:
        yield s


@pytest.fixture
def frames(tmp_path) -> Path:
    return make_frames(tmp_path / "clip")


def config_for(server: ts.TeacherServer, **kw) -> TeacherConfig:
    base = dict(base_url=server.base_url, model="teacher-test", api_key=SECRET, timeout_s=5.0,
                max_retries=3, backoff_s=0.02, max_backoff_s=2.0, requests_per_minute=0,
                cost_per_1k_prompt_tokens=0.5, cost_per_1k_completion_tokens=1.5)
    base.update(kw)
    return TeacherConfig(**base)


def one(server, frames, label="fake", duration_s=1.0, **kw):
    req = TeacherRequest(sid(str(frames) + label), label, duration_s, frames)
    [ann] = annotate_batch_sync([req], config_for(server, **kw))
    return ann


# ------------------------------------------------------------------------------------- prompt

def test_config_fields_all_have_help_and_key_is_not_in_repr(server):
    cfg = config_for(server)
    assert all(f.metadata.get("help") for f in fields(TeacherConfig))
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert cfg.prompt_version == grammar.PROMPT_VERSION


def test_messages_layout_timestamp_before_each_decodable_frame(tmp_path):
    folder = make_frames(tmp_path / "f", n=10, fps=4.0)
    msgs = build_messages("fake", folder, max_frames=4)
    assert msgs[0] == {"role": "system", "content": grammar.system_prompt()}
    user = msgs[1]["content"]
    assert user[0] == {"type": "text", "text": "This video is Fake. Explain the reason, grounding each "
                                               "artifact with its type, time span and box."}
    pairs = list(zip(user[1::2], user[2::2]))
    assert len(pairs) == 4 and len(user) == 9
    picked = subsample(10, 4)
    assert picked == [0, 3, 6, 9]
    for (text_part, image_part), idx in zip(pairs, picked):
        assert text_part == {"type": "text", "text": f"[T={idx / 4.0:.2f}s]"}
        assert image_part["type"] == "image_url"
        prefix = "data:image/png;base64,"
        url = image_part["image_url"]["url"]
        assert url.startswith(prefix)
        decoded = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))
        original = Image.open(folder / f"{idx + 1}.png")
        assert decoded.format == "PNG" and decoded.tobytes() == original.tobytes()
    assert build_messages("real", folder, max_frames=50)[1]["content"][0]["text"].startswith("This video is Real.")
    assert len(build_messages("real", folder, max_frames=50)[1]["content"]) == 1 + 2 * 10


def test_subsample_is_even_and_bounded():
    assert subsample(3, 8) == [0, 1, 2]
    assert subsample(100, 1) == [50]
    for n in range(1, 60):
        for k in range(1, 12):
            idx = subsample(n, k)
            assert len(idx) == min(n, k) and idx == sorted(set(idx)) and idx[-1] < n
            if n > k > 1:
                assert idx[0] == 0 and idx[-1] == n - 1


def test_check_reply_teacher_rules():
    assert check_reply(ts.GOOD_FAKE, "fake", 1.0)[1] == []
    assert check_reply(ts.GOOD_REAL, "real", 1.0)[1] == []
    codes = lambda text, label: {c for c, _ in check_reply(text, label, 1.0)[1]}  # noqa: E731
    assert codes(ts.GOOD_REAL, "fake") >= {"label_contradiction", "no_evidence"}
    assert codes("<think>It looks off.</think><answer>Fake</answer>", "fake") == {"no_evidence"}
    assert codes("<think>fine</think><conclusion>real</conclusion>", "real") == {"wrong_style"}
    assert "ungrounded_evidence" in codes(
        "<think><type>Shape Distortion</type> in <t>[0.1, 0.5]</t></think><answer>Fake</answer>", "fake")
    assert {"bad_time", "no_answer"} <= codes(ts.MALFORMED, "fake")


# ---------------------------------------------------------------------------------- accepting

def test_good_reply_accepted_with_evidence_tokens_cost(server, frames):
    ann = one(server, frames)
    assert ann.status == "accepted" and ann.rejection_reason is None and ann.violations == ()
    assert ann.label == "fake" and ann.explanation == ts.GOOD_FAKE
    [art] = ann.artifacts
    assert (art.type, art.t, art.bbox) == ("Shape Distortion", (0.5, 1.0), (0.1, 0.2, 0.5, 0.6))
    assert ann.provenance.kind == "teacher" and ann.provenance.annotator == "teacher-test"
    assert ann.provenance.prompt_version == grammar.PROMPT_VERSION
    assert ann.provenance.taxonomy_version == load_taxonomy().version
    u = ann.usage
    assert (u.prompt_tokens, u.completion_tokens, u.attempts) == (ts.PROMPT_TOKENS, ts.COMPLETION_TOKENS, 1)
    assert u.cost_usd == pytest.approx((120 * 0.5 + 45 * 1.5) / 1000)
    assert u.latency_s > 0
    [call] = server.calls
    assert call.body["model"] == "teacher-test" and call.label == "fake"


def test_real_clip_accepted_with_untyped_normal_segment(server, frames):
    ann = one(server, frames, label="real")
    assert ann.status == "accepted" and ann.label == "real"
    assert [(a.type, a.t) for a in ann.artifacts] == [(None, (0.0, 1.0))]


def test_malformed_then_good_accepted_after_one_repair_quoting_codes(server, frames):
    server.push(ts.BAD, ts.GOOD)
    ann = one(server, frames)
    assert ann.status == "accepted" and ann.usage.attempts == 2
    assert ann.usage.prompt_tokens == 2 * ts.PROMPT_TOKENS
    assert ann.usage.completion_tokens == 2 * ts.COMPLETION_TOKENS
    first, repair = server.calls
    msgs = repair.body["messages"]
    assert msgs[:2] == first.body["messages"]  # same conversation, extended
    assert msgs[2] == {"role": "assistant", "content": ts.MALFORMED}
    ask = msgs[3]
    assert ask["role"] == "user"
    expected = {v.code for v in grammar.check(ts.MALFORMED, duration_s=1.0).violations}
    assert {"bad_time", "no_answer"} <= expected
    for code in expected:
        assert f"- {code}:" in ask["content"]
    assert "<answer>Fake</answer>" in ask["content"] and "<bbox>" in ask["content"]


def test_always_malformed_rejected_naming_the_codes(server, frames):
    server.default = ts.BAD
    ann = one(server, frames, max_repairs=2)
    assert ann.status == "rejected" and len(server.calls) == 3 and ann.usage.attempts == 3
    assert {"bad_time", "no_answer"} <= set(ann.violations)
    for code in ann.violations:
        assert code in ann.rejection_reason
    assert ann.explanation == ts.MALFORMED and ann.artifacts == ()
    # the second repair carries the whole conversation: two assistant turns, two repair turns
    assert [m["role"] for m in server.calls[-1].body["messages"]] == [
        "system", "user", "assistant", "user", "assistant", "user"]


def test_label_contradiction_rejected_after_repairs(server, frames):
    server.default = ts.CONTRADICT
    ann = one(server, frames, max_repairs=1)
    assert ann.status == "rejected" and len(server.calls) == 2
    assert "label_contradiction" in ann.violations and "label_contradiction" in ann.rejection_reason
    assert "- label_contradiction:" in server.calls[1].body["messages"][-1]["content"]


def test_contradiction_then_good_accepted(server, frames):
    server.push(ts.CONTRADICT, ts.GOOD)
    ann = one(server, frames, label="real")
    assert ann.status == "accepted" and ann.usage.attempts == 2 and ann.label == "real"


# ---------------------------------------------------------------------------------- transport

def test_500_then_good_is_retried(server, frames):
    server.push(ts.status(500), ts.GOOD)
    ann = one(server, frames)
    assert ann.status == "accepted" and len(server.calls) == 2
    assert ann.usage.attempts == 1  # one reply from the model; the 500 was transport


def test_429_retry_after_is_honoured(server, frames):
    server.push(ts.status(429, retry_after="1"), ts.GOOD)
    ann = one(server, frames)
    assert ann.status == "accepted"
    first, second = server.calls
    assert second.at - first.at >= 1.0


def test_slow_reply_times_out_and_retry_succeeds(server, frames):
    server.push(ts.slow(1.5), ts.GOOD)
    t0 = time.monotonic()
    ann = one(server, frames, timeout_s=0.4)
    assert ann.status == "accepted" and len(server.calls) == 2
    assert time.monotonic() - t0 < 1.5  # did not wait for the slow reply


def test_transport_exhausted_is_rejected_not_raised(server, frames):
    server.default = ts.status(503)
    ann = one(server, frames, max_retries=2)
    assert ann.status == "rejected" and len(server.calls) == 3
    assert ann.rejection_reason.startswith("transport: HTTP 503")


def test_client_error_is_not_retried(server, frames):
    server.default = ts.status(400, body='{"error": "bad model"}')
    ann = one(server, frames)
    assert ann.status == "rejected" and len(server.calls) == 1
    assert "transport: HTTP 400" in ann.rejection_reason


def test_unreachable_endpoint_rejected(frames):
    cfg = TeacherConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, backoff_s=0.01,
                        requests_per_minute=0, timeout_s=2)
    [ann] = annotate_batch_sync([TeacherRequest(sid("x"), "fake", 1.0, frames)], cfg)
    assert ann.status == "rejected" and ann.rejection_reason.startswith("transport: ")


def test_bad_frames_rejected_without_a_call(server, tmp_path):
    (tmp_path / "empty").mkdir()
    ann = one(server, tmp_path / "empty")
    assert ann.status == "rejected" and ann.rejection_reason.startswith("frames: ")
    assert server.calls == []


def test_api_key_sent_as_bearer_and_absent_from_logs_and_errors(server, frames, caplog):
    caplog.set_level(logging.DEBUG)
    server.push(ts.status(500))
    # an error body that echoes the request headers back must not carry the key into the record
    server.default = ts.status(401, body=f'{{"error": "bad key Bearer {SECRET}"}}')
    ann = one(server, frames)
    assert all(c.headers.get("Authorization") == f"Bearer {SECRET}" for c in server.calls)
    assert ann.status == "rejected" and "HTTP 401" in ann.rejection_reason
    assert SECRET not in ann.model_dump_json()
    assert SECRET not in caplog.text
    assert "HTTP 500" in caplog.text  # the retry was logged (so the log was really captured)


def test_no_authorization_header_without_key(server, frames):
    one(server, frames, api_key=None)
    assert "Authorization" not in server.calls[0].headers


# ---------------------------------------------------------------------------------- batching

def test_concurrency_is_bounded_and_used(server, tmp_path):
    server.default = ts.slow(0.25)
    reqs = [TeacherRequest(sid(f"c{i}"), "fake" if i % 2 else "real", 1.0,
                           make_frames(tmp_path / f"c{i}", n=3)) for i in range(12)]
    events: list[tuple[str, int, int]] = []
    t0 = time.monotonic()
    anns = annotate_batch_sync(reqs, config_for(server, max_concurrency=3),
                               progress=lambda e, d, n: events.append((e, d, n)))
    assert time.monotonic() - t0 < 12 * 0.25  # really parallel
    assert server.max_in_flight == 3
    assert [a.sample_id for a in anns] == [r.sample_id for r in reqs]  # request order
    assert all(a.status == "accepted" for a in anns)
    assert [a.label for a in anns] == [r.label for r in reqs]
    assert events[0] == ("start", 0, 12)
    assert [d for _, d, _ in events[1:]] == list(range(1, 13))
    assert {e for e, _, _ in events[1:]} == {"accepted"}


def test_requests_per_minute_spaces_request_starts(server, tmp_path):
    reqs = [TeacherRequest(sid(f"r{i}"), "fake", 1.0, make_frames(tmp_path / f"r{i}", n=2)) for i in range(5)]
    annotate_batch_sync(reqs, config_for(server, max_concurrency=5, requests_per_minute=600))
    # then the server saw at most one request per 0.1 s
    assert len(server.calls) == 5
    assert_paced([c.at for c in server.calls], 0.1)


def test_rate_limiter_alone():
    async def go() -> float:
        limiter = RateLimiter(5, per_s=1.0)
        t0 = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(6)))
        return time.monotonic() - t0

    assert asyncio.run(go()) >= 1.0 - 0.02
    assert asyncio.run(asyncio.wait_for(RateLimiter(0).acquire(), 0.1)) is None


def test_rate_limiter_does_not_burst_after_the_event_loop_stalls():
    async def go() -> list[float]:
        # given four callers waiting on a 0.1 s pace
        limiter, starts = RateLimiter(10, per_s=1.0), []

        async def caller() -> None:
            await limiter.acquire()
            starts.append(time.monotonic())

        tasks = [asyncio.create_task(caller()) for _ in range(4)]
        await asyncio.sleep(0)
        # when the event loop is blocked past every slot a caller could have booked
        time.sleep(0.5)
        await asyncio.gather(*tasks)
        return starts

    # then they still start one per 0.1 s, not together when the loop wakes
    assert_paced(asyncio.run(go()), 0.1)


def test_mixed_batch_never_raises_and_reports_each_outcome(server, tmp_path):
    ok_dir = make_frames(tmp_path / "ok")
    reqs = [TeacherRequest(sid("a"), "fake", 1.0, ok_dir),
            TeacherRequest(sid("b"), "fake", 1.0, tmp_path / "missing"),
            TeacherRequest(sid("c"), "real", 1.0, ok_dir)]
    events = []
    anns = annotate_batch_sync(reqs, config_for(server, max_concurrency=1),
                               progress=lambda e, d, n: events.append(e))
    assert [a.status for a in anns] == ["accepted", "rejected", "accepted"]
    assert sorted(events) == sorted(["start", "accepted", "rejected", "accepted"])


def test_sync_wrapper_inside_running_loop_and_async_api(server, frames):
    cfg = config_for(server)
    req = TeacherRequest(sid("loop"), "fake", 1.0, frames)

    async def inside() -> list:
        sync = annotate_batch_sync([req], cfg)  # must not try to re-enter this loop
        async with httpx.AsyncClient() as client:
            direct = await annotate_sample(req, cfg, client=client, limiter=RateLimiter(0))
        batched = await annotate_batch([req], cfg)
        return [*sync, direct, *batched]

    anns = asyncio.run(inside())
    assert [a.status for a in anns] == ["accepted"] * 3


def test_out_of_clip_time_is_a_violation_with_duration(server, frames):
    ann = one(server, frames, duration_s=0.6, max_repairs=0)  # GOOD_FAKE cites [0.5, 1.0]
    assert ann.status == "rejected" and "time_out_of_clip" in ann.violations


def test_config_validation():
    with pytest.raises(ValueError):
        TeacherConfig(base_url="x", model="m", max_concurrency=0)
    cfg = TeacherConfig(base_url="http://h/v1/", model="m")
    assert cfg.chat_url == "http://h/v1/chat/completions"
    assert replace(cfg, cost_per_1k_prompt_tokens=2.0).cost_usd(500, 0) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_against_real_openai_server_with_tiny_model(request, tmp_path):
    """The real wiring: our client, a real OpenAI-compatible server, the random-weight tiny VLM.
    Its garbage must come back as a *grammar* rejection (not transport), with real token counts."""
    openai_server = pytest.importorskip("vigil.serving.openai_server")
    model_dir = request.getfixturevalue("tiny_model_dir")
    frames = make_frames(tmp_path / "clip", n=3)
    with openai_server.serve_openai(model_dir) as info:
        cfg = TeacherConfig(base_url=info.base_url, model=info.model_name, max_tokens=24, max_frames=2,
                            max_repairs=1, timeout_s=120, max_retries=1, requests_per_minute=0,
                            cost_per_1k_prompt_tokens=1.0)
        started = time.monotonic()
        [ann] = annotate_batch_sync([TeacherRequest(sid("e2e-fake"), "fake", 0.75, frames)], cfg)
        logging.getLogger(__name__).info("tiny-model teacher call took %.1fs: %s",
                                         time.monotonic() - started, ann.rejection_reason)
    assert ann.status == "rejected", ann.explanation
    assert not ann.rejection_reason.startswith("transport"), ann.rejection_reason
    assert ann.violations and all(code in ann.rejection_reason for code in ann.violations)
    assert ann.usage.attempts == 2 and ann.usage.prompt_tokens > 0 and ann.usage.completion_tokens > 0
    assert ann.usage.cost_usd > 0 and ann.provenance.annotator == info.model_name
