"""The OpenAI-compatible server: real HTTP on loopback, the tiny model, the openai client."""

from __future__ import annotations

import base64
import io
import json
import os
import socket

import httpx
import numpy as np
import pytest
from PIL import Image

from vigil.serving.openai_server import RequestError, serve_openai, validate_chat_request


def _png_uri(seed: int, size=(112, 112)) -> str:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _messages(n_images: int) -> list[dict]:
    parts = [{"type": "text", "text": "Frames of one clip, in order:"}]
    parts += [{"type": "image_url", "image_url": {"url": _png_uri(i, (112, 84 + 14 * i))}}
              for i in range(n_images)]
    parts += [{"type": "text", "text": "Is the clip real or fake? Answer with <answer>."}]
    return [{"role": "system", "content": "You are a video forensics annotator."},
            {"role": "user", "content": parts}]


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    with serve_openai(tiny_model_dir, startup_timeout_s=120) as info:
        yield info


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60) as c:
        yield c


@pytest.mark.parametrize("n_images", [2, 4])
def test_chat_completion_with_images(client, server, n_images):
    response = client.chat.completions.create(
        model=server.model_name, messages=_messages(n_images), max_tokens=12, temperature=0.7,
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    # a random-weight model may sample its end token first (an empty answer, "stop"): seen in CI
    assert isinstance(choice.message.content, str)
    assert choice.message.content.strip() or choice.finish_reason == "stop"
    usage = response.usage
    assert 1 <= usage.completion_tokens <= 12
    # Each image is at least 16 tokens after merging; the prompt holds them all.
    assert usage.prompt_tokens > 16 * n_images
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert choice.finish_reason in {"stop", "length"}


def test_greedy_is_repeatable_and_streaming_reports_usage(client, server):
    kwargs = dict(model=server.model_name, messages=_messages(2), max_tokens=6, temperature=0)
    first = client.chat.completions.create(**kwargs).choices[0].message.content
    assert client.chat.completions.create(**kwargs).choices[0].message.content == first
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first
    assert [c.usage for c in chunks if c.usage][-1].completion_tokens >= 1


def test_models_lists_the_served_model(client, server, tiny_model_dir):
    models = client.models.list().data
    assert [m.id for m in models] == [server.model_name] == [tiny_model_dir.name]


_OK = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
_BAD = {
    "not json": b"{not json",
    "no messages": {"max_tokens": 2},
    "empty messages": {"messages": []},
    "bad role": {"messages": [{"role": "robot", "content": "hi"}]},
    "part without type": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    "bad base64": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
    "not an image": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]}]},
    "negative max_tokens": {**_OK, "max_tokens": -1},
    "unknown field": {**_OK, "bogus": 1},
    "unknown model": {**_OK, "model": "gpt-404"},
}


@pytest.mark.parametrize("case", list(_BAD))
def test_malformed_requests_get_4xx_and_the_server_lives_on(server, case):
    body = _BAD[case]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as http:
        r = http.post("/chat/completions", content=content,
                      headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert server.process.poll() is None
        ok = http.post("/chat/completions", json=_OK)
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] >= 1


def test_validate_chat_request_accepts_openai_shapes():
    validate_chat_request({"messages": _messages(2), "max_tokens": 4, "temperature": 0.2})
    validate_chat_request({"messages": [{"role": "assistant", "content": None},
                                        {"role": "user", "content": "go on"}]})
    with pytest.raises(RequestError):
        validate_chat_request({"messages": _messages(1), "temperature": 3})


def test_start_and_stop_leave_nothing_behind(tiny_model_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with serve_openai(tiny_model_dir, port=port, served_model_name="teacher") as info:
        assert info.base_url == f"http://127.0.0.1:{port}/v1"
        assert info.startup_s > 0 and info.log_path.exists()
        r = httpx.post(f"{info.base_url}/chat/completions", trust_env=False, timeout=30,
                       json={"model": "teacher", **_OK})
        assert r.status_code == 200
        pid, workdir = info.process.pid, info.log_path.parent
    assert info.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # no process of the server's group is left
    assert not workdir.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False, timeout=2)
