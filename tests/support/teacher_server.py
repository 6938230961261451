"""A scripted OpenAI-compatible chat server on 127.0.0.1, for the teacher annotator's tests.

Each POST to ``/v1/chat/completions`` takes the next :class:`Action` from the script (or the
default action when the script is empty): a good reply for the label the request states, a reply
that breaks the grammar, one that contradicts the label, a slow one, an HTTP error with an optional
``Retry-After``. Every request is recorded (arrival time, headers, JSON body), and so is the most
requests ever in flight at once, so that a test asserts what the client actually did.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_FAKE = ("<think>The cup on the table <type>Shape Distortion</type> in <t>[0.50, 1.00]</t> at "
             "<bbox>[0.10, 0.20, 0.50, 0.60]</bbox> bends as the camera pans.</think>\n"
             "<answer>Fake</answer>")
GOOD_REAL = ("<think>Motion and lighting stay consistent; the walk in <t>[0.00, 1.00]</t> at "
             "<bbox>[0.20, 0.10, 0.70, 0.90]</bbox> is natural.</think>\n<answer>Real</answer>")
MALFORMED = "<think>The cup bends <type>Shape Distortion</type> in <t>soon</t>"  # bad_time, unclosed, no answer
PROMPT_TOKENS = 120
COMPLETION_TOKENS = 45


@dataclass(frozen=True)
class Action:
    """What the server does with one request."""

    kind: str = "good"            # good | malformed | contradict | text | status
    delay_s: float = 0.0          # sleep before answering (slow server / concurrency probe)
    status: int = 200             # for kind="status"
    retry_after: str | None = None
    text: str = ""                # for kind="text" (reply content) or kind="status" (error body)


GOOD = Action("good")
BAD = Action("malformed")
CONTRADICT = Action("contradict")


def slow(delay_s: float) -> Action:
    return Action("good", delay_s=delay_s)


def status(code: int, retry_after: str | None = None, body: str = "") -> Action:
    return Action("status", status=code, retry_after=retry_after, text=body)


@dataclass(frozen=True)
class Call:
    at: float                     # time.monotonic() on arrival
    headers: dict[str, str]
    body: dict

    @property
    def label(self) -> str | None:
        return requested_label(self.body)


def requested_label(body: dict) -> str | None:
    """The label the client told the teacher ("This video is Fake…"), from the first user turn."""
    for msg in body.get("messages", []):
        if msg.get("role") != "user":
            continue
        content = msg["content"]
        text = content if isinstance(content, str) else " ".join(
            p.get("text", "") for p in content if p.get("type") == "text")
        m = re.search(r"This video is (Real|Fake)", text)
        if m:
            return m.group(1).lower()
    return None


class TeacherServer:
    """Threaded HTTP server answering chat completions from a script."""

    def __init__(self) -> None:
        self.script: deque[Action] = deque()
        self.default = GOOD
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real server behind httpx

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                    return
                body = json.loads(raw)
                with server._lock:
                    server.calls.append(Call(time.monotonic(), dict(self.headers.items()), body))
                    action = server.script.popleft() if server.script else server.default
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if action.delay_s:
                        time.sleep(action.delay_s)
                    server._answer(self, action, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) on purpose
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, code: int, payload: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args) -> None:  # keep test output quiet
                pass

        self._handler_cls = _Handler
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *actions: Action) -> None:
        self.script.extend(actions)

    def _answer(self, handler, action: Action, body: dict) -> None:
        if action.kind == "status":
            extra = {"Retry-After": action.retry_after} if action.retry_after else {}
            handler._send(action.status, (action.text or json.dumps({"error": "scripted"})).encode(), extra)
            return
        label = requested_label(body) or "fake"
        if action.kind == "good":
            text = GOOD_FAKE if label == "fake" else GOOD_REAL
        elif action.kind == "malformed":
            text = MALFORMED
        elif action.kind == "contradict":
            text = GOOD_REAL if label == "fake" else GOOD_FAKE
        else:
            text = action.text
        reply = {
            "id": f"chatcmpl-{len(self.calls)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
        }
        handler._send(200, json.dumps(reply).encode())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def teacher_server() -> Iterator[TeacherServer]:
    server = TeacherServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
