"""A test double for an LLM server: a deterministic OpenAI-compatible chat completions endpoint.

Real LLM servers (vLLM, Ollama, llama.cpp, TGI) cannot run on this machine, so the LLM tests talk
to this one instead. It is a real HTTP/1.1 server on 127.0.0.1 and a free port and speaks the wire
protocol the official ``openai`` client speaks: ``POST /v1/chat/completions`` answered with JSON,
or with server-sent events in chunked transfer encoding when ``stream`` is true (``data: {chunk}``
lines, ``data: [DONE]``), ``GET /v1/models``, bearer keys, and OpenAI-style error bodies with
``Retry-After-Ms`` for retries.

What it says is deterministic. Scripted `Reply` objects are used first, in order (a failure
status, a delay, a fixed text); with none left it answers like a careful model would: it finds
the quoted passage sentence that shares the most words with the question and replies with that
sentence and ``[n]``, or with the prompt's no-answer sentence when nothing shares two words.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIDouble", "Reply"]

_PASSAGE = re.compile(r'<passage id="(\d+)"[^>]*>\n(.*?)\n</passage>', re.DOTALL)
_QUESTION = re.compile(r"^Question(?: \(in full\))?: (.+)$", re.MULTILINE)
_NO_ANSWER = re.compile(r'reply exactly: "([^"]+)"')
_WORD = re.compile(r"[a-z0-9]+")
_COMMON = {"the", "a", "an", "of", "to", "in", "is", "are", "do", "does", "how", "what", "many", "for", "and", "we"}


@dataclass
class Reply:
    """One scripted answer: a status other than 200 is an error; *delay_s* waits before answering."""

    text: str | None = None
    status: int = 200
    delay_s: float = 0.0
    retry_after_ms: int | None = None


class OpenAIDouble:
    """Start with `start()` or ``with``; `url` is the base URL to configure (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, *, model: str = "double-1", api_key: str | None = None) -> None:
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []  # every request body received, in order (failed ones too)
        self.script: deque[Reply] = deque()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-double", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> OpenAIDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply_text(self, body: dict[str, Any]) -> str:
        """The deterministic answer to a chat request (see the module docstring)."""
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if "standalone search query" in system:  # a follow-up rewrite: the last question plus the first one's topic
            first = re.search(r"^user: (.+)$", user, re.MULTILINE)
            last = user.rsplit("Last question: ", 1)[-1].strip()
            return f"{last} ({first.group(1).strip()})" if first else last
        question = _QUESTION.findall(user)
        asked = set(_WORD.findall(question[-1].lower())) - _COMMON if question else set()
        best: tuple[int, str, str] = (1, "", "")
        for number, text in _PASSAGE.findall(user):
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
                shared = len(asked & set(_WORD.findall(sentence.lower())))
                if shared > best[0]:
                    best = (shared, sentence.strip(), number)
        if not best[1]:
            found = _NO_ANSWER.search(system)
            return found.group(1) if found else "I do not know."
        sentence = best[1].rstrip(".")
        return f"{sentence} [{best[2]}]."


def _pieces(text: str) -> list[str]:
    # Roughly token-sized pieces: words with their following space, and brackets apart.
    return re.findall(r"\[|\]|[^\s\[\]]+\s*|\s+", text)


def _handler(double: OpenAIDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self._error(404, "not found")
            self._json(200, {"object": "list", "data": [{"id": double.model, "object": "model", "owned_by": "test"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            double.requests.append(body)
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._error(404, f"no route {self.path}")
            if double.api_key is not None and self.headers.get("Authorization") != f"Bearer {double.api_key}":
                return self._error(401, "Incorrect API key provided")
            if body.get("model") != double.model:
                return self._error(404, f"The model {body.get('model')!r} does not exist")
            reply = double.script.popleft() if double.script else Reply()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.status != 200:
                return self._error(reply.status, "scripted failure", retry_after_ms=reply.retry_after_ms)
            text = reply.text if reply.text is not None else double.reply_text(body)
            try:
                if body.get("stream"):
                    self._stream(text)
                else:
                    self._json(200, self._completion(text))
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

        def _completion(self, text: str) -> dict[str, Any]:
            return {
                "id": f"chatcmpl-double-{len(double.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": double.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }

        def _stream(self, text: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            base = {"id": "chatcmpl-double", "object": "chat.completion.chunk", "created": 0, "model": double.model}
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            deltas += [{"content": piece} for piece in _pieces(text)]
            for delta in deltas:
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n")
            last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self._chunk(f"data: {json.dumps(last)}\n\n")
            self._chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _error(self, status: int, message: str, *, retry_after_ms: int | None = None) -> None:
            kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}
            headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else None
            error = {"message": message, "type": kind.get(status, "server_error"), "code": None, "param": None}
            self._json(status, {"error": error}, headers)

    return Handler
