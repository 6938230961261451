"""A real OpenAI-compatible chat server on loopback, serving a local model folder.

The server is ``transformers serve`` (transformers' own OpenAI-style server: FastAPI + uvicorn over
``generate``), run in a child process started by :func:`serve_openai`. It loads the model folder
offline, preloads it (``force_model``), and answers ``/v1/chat/completions`` with ``image_url``
parts (base64 ``data:`` URIs included), ``max_tokens``, ``temperature``, streaming, and ``usage``
token counts; ``/v1/models`` lists the served model; ``/health`` says when it is up.

The child is ``python -m vigil.serving.openai_server MODEL_DIR --port N``; it adds four things to
``transformers serve`` before handing over to it, none of which changes how a request is answered:

* :func:`vigil.models.compat.ensure_transformers_compat` (CUDA torchvision with CPU torch);
* ``message.content`` is the model's whole answer, as vLLM returns it without a reasoning parser.
  Upstream splits Qwen answers at ``<think>...</think>`` into ``reasoning_content`` and strips
  it from ``content``; Vigil's answer grammar puts the grounded evidence there, so we turn that
  off (``reasoning_parser=True`` turns it back on);
* ``/v1/models`` lists the served model. Upstream lists the Hugging Face *cache* and so never shows
  a local folder (and answers 500 when there is no cache folder at all);
* requests are checked at the door: a malformed chat request (no messages, a part without a type,
  an undecodable image, ...) gets an OpenAI-style 400 instead of a 500 from deep inside the
  processor; and the served name (like vLLM's ``--served-model-name``) is mapped to the folder.

Production serves with vLLM (a later issue); this server speaks the same API, so a client written
against it (the annotation teacher) works against either.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vigil.config.errors import InputError, ServiceError
from vigil.io.procs import NotReady, free_port, wait_http_ready

__all__ = ["ServerInfo", "ServerStartError", "serve_openai", "validate_chat_request"]

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_PART_TYPES = {"text", "image_url"}


class ServerStartError(ServiceError):
    """The server process exited or did not become ready in time (message holds its log tail)."""


@dataclass(frozen=True)
class ServerInfo:
    base_url: str  # e.g. "http://127.0.0.1:41234/v1": what an OpenAI client takes as base_url
    model_name: str  # the `model` to send (also what /v1/models lists)
    process: subprocess.Popen
    port: int
    startup_s: float  # seconds from spawn to ready
    log_path: Path  # the server's stdout/stderr (inside a temporary folder removed on exit)


# --------------------------------------------------------------------------------------------
# Request checks (run inside the server; pure functions so they are tested directly too)


class RequestError(InputError, ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def _check_image_url(url: object, where: str) -> None:
    if not isinstance(url, str) or not url:
        raise RequestError("image_url.url must be a non-empty string", where)
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or not header.startswith("data:image/") or ";base64" not in header:
            raise RequestError("data URIs must look like data:image/<type>;base64,<data>", where)
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("data URI payload is not valid base64", where) from None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(raw)) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise RequestError(f"data URI is not a readable image: {e}", where) from None
    elif not url.startswith(("http://", "https://")):
        raise RequestError("image_url.url must be a data: URI or an http(s) URL", where)


def validate_chat_request(body: object) -> None:
    """Raise :class:`RequestError` when ``body`` is not a well-formed chat-completions request."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestError("each message must be an object", where)
        if message.get("role") not in _ROLES:
            raise RequestError(f"role must be one of {sorted(_ROLES)}", f"{where}.role")
        content = message.get("content")
        if content is None and message["role"] == "assistant":
            continue
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise RequestError("content must be a string or a list of parts", f"{where}.content")
        for j, part in enumerate(content):
            pwhere = f"{where}.content[{j}]"
            if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
                raise RequestError(f"each part must be an object with type in {sorted(_PART_TYPES)}",
                                   pwhere)
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise RequestError("a text part needs a string 'text'", pwhere)
            if part["type"] == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                _check_image_url(url, f"{pwhere}.image_url")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise RequestError("max_tokens must be a positive integer", "max_tokens")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float))
        or not 0 <= temperature <= 2
    ):
        raise RequestError("temperature must be a number in [0, 2]", "temperature")


class _GuardMiddleware:
    """ASGI middleware: checks chat requests and maps the served name to the model folder."""

    def __init__(self, app, *, served_name: str, model_ref: str):
        self.app = app
        self.served_name = served_name
        self.model_ref = model_ref

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"] == "/v1/chat/completions"):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RequestError(f"the request body is not JSON: {e}") from None
            validate_chat_request(body)
            model = body.get("model")
            if model is not None and model not in (self.served_name, self.model_ref):
                return await self._error(send, 404, f"model '{model}' is not served here; "
                                         f"use '{self.served_name}'", "model",
                                         "model_not_found")
        except RequestError as e:
            return await self._error(send, 400, str(e), e.param, None)
        body["model"] = self.model_ref
        new_raw = json.dumps(body).encode()
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": new_raw, "more_body": False}
            return await receive()

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(new_raw)).encode()))
        return await self.app({**scope, "headers": headers}, replay, send)

    @staticmethod
    async def _error(send, status: int, message: str, param: str | None, code: str | None):
        payload = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                        "param": param, "code": code}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _run_server(model_dir: str, *, host: str, port: int, served_name: str, device: str,
                dtype: str, log_level: str, reasoning_parser: bool = False) -> None:
    """The child process: ``transformers serve`` with Vigil's additions (module docstring)."""
    from vigil.models.compat import ensure_transformers_compat

    ensure_transformers_compat()
    import transformers.cli.serving.server as server_module
    import transformers.cli.serving.utils as serving_utils
    from fastapi.responses import JSONResponse
    from transformers.cli.serve import Serve

    # The hooks below are transformers internals (pinned in constraints.txt): fail loudly if an
    # upgrade moves them rather than serve with different behaviour.
    for module, name in ((server_module, "build_server"), (serving_utils, "get_response_template")):
        if not callable(getattr(module, name, None)):
            raise RuntimeError(f"{module.__name__}.{name} is gone: update vigil.serving.openai_server")
    created = int(time.time())
    upstream_build_server = server_module.build_server

    def build_server(*args, **kwargs):
        app = upstream_build_server(*args, **kwargs)
        app.router.routes[:] = [r for r in app.router.routes
                                if getattr(r, "path", None) != "/v1/models"]

        @app.get("/v1/models")
        def list_models():
            return JSONResponse({"object": "list", "data": [
                {"id": served_name, "object": "model", "created": created, "owned_by": "vigil",
                 "root": model_dir}
            ]})

        app.add_middleware(_GuardMiddleware, served_name=served_name, model_ref=model_dir)
        return app

    # `Serve` imports build_server from this module when it is constructed.
    server_module.build_server = build_server
    if not reasoning_parser:
        # No response template: the answer is decoded whole (special tokens skipped), as vLLM does.
        serving_utils.get_response_template = lambda processor, model: None
    Serve(force_model=model_dir, host=host, port=port, device=device, dtype=dtype,
          log_level=log_level)


# --------------------------------------------------------------------------------------------
# The parent side


def _stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left; reap the child."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # The group may outlive its leader (a stray grandchild): kill it in any case.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_ready(process: subprocess.Popen, url: str, log: Path, timeout_s: float) -> None:
    try:
        wait_http_ready(process, f"{url}/health", timeout_s=timeout_s)
    except NotReady as exc:
        raise ServerStartError(f"server {exc}:\n{_tail(log)}") from None


@contextmanager
def serve_openai(
    model_dir: str | Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    served_model_name: str | None = None,
    startup_timeout_s: float = 180.0,
    device: str = "auto",
    dtype: str = "auto",
    log_level: str = "warning",
    reasoning_parser: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[ServerInfo]:
    """Run an OpenAI-compatible server for ``model_dir`` on ``host:port`` while the block runs.

    ``port=None`` picks a free one (and retries with another if it was taken in the meantime).
    The served name defaults to the folder's name. Loads offline (``HF_HUB_OFFLINE=1``). Yields
    once ``/health`` answers 200, which is after the model is loaded. On exit the server's whole
    process group is stopped (SIGTERM, then SIGKILL) and its temporary folder removed.
    """
    model_path = Path(model_dir).resolve()
    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(f"{model_path} is not a model folder (no config.json)")
    name = served_model_name or model_path.name
    workdir = Path(tempfile.mkdtemp(prefix="vigil-openai-"))
    child_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(workdir),
        **(env or {}),
    }
    process: subprocess.Popen | None = None
    try:
        for attempt in range(3 if port is None else 1):
            chosen = port or free_port(host)
            log = workdir / f"server-{attempt}.log"
            started = time.monotonic()
            with open(log, "wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "vigil.serving.openai_server", str(model_path),
                     "--host", host, "--port", str(chosen), "--served-model-name", name,
                     "--device", device, "--dtype", dtype, "--log-level", log_level,
                     *(["--reasoning-parser"] if reasoning_parser else [])],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    env=child_env, cwd=workdir, start_new_session=True,
                )
            try:
                _wait_ready(process, f"http://{host}:{chosen}", log, startup_timeout_s)
            except ServerStartError as e:
                _stop(process)
                process = None
                lost_port = "address already in use" in str(e).lower()
                if lost_port and port is None and attempt < 2:
                    continue
                raise
            yield ServerInfo(base_url=f"http://{host}:{chosen}/v1", model_name=name,
                             process=process, port=chosen,
                             startup_s=time.monotonic() - started, log_path=log)
            return
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vigil.serving.openai_server",
        description="Serve a local model folder over an OpenAI-compatible API (transformers serve).",
    )
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--reasoning-parser", action="store_true",
                        help="split <think>...</think> into reasoning_content (upstream default)")
    args = parser.parse_args(argv)
    model_dir = str(Path(args.model_dir).resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _run_server(model_dir, host=args.host, port=args.port,
                served_name=args.served_model_name or Path(model_dir).name,
                device=args.device, dtype=args.dtype, log_level=args.log_level,
                reasoning_parser=args.reasoning_parser)


if __name__ == "__main__":
    main()
