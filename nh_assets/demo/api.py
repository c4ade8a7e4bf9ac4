"""A small, deterministic **fake** of the Gemini REST API (stdlib only).

Why this exists
---------------
NeuroHelix drives the real ``@google/gemini-cli`` (pinned in ``package.json``)
as a subprocess.  Two situations must not talk to Google:

* **demo mode** - the pipeline runs end to end on a laptop without an API key,
  and every artefact it produces is visibly fake;
* **tests** - the real CLI binary is exercised (flags, exit codes, JSON
  output, retries) against a server we control, offline and repeatably.

The real CLI can be pointed at this server with::

    GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT
    GEMINI_API_KEY=anything
    $HOME/.gemini/settings.json = {"security":{"auth":{"selectedType":"gemini-api-key"}}}

It then POSTs ``/v1beta/models/MODEL:streamGenerateContent?alt=sse``.

Everything the server returns is labelled as fake/demo output: markdown
answers start with ``# <prompt_id> (demo output from NeuroHelix fake Gemini)``,
HTML answers carry the same label, JSON answers carry the tag
``fake-gemini-demo``.

Prompt contract (written by the project's prompt renderer into every prompt)
---------------------------------------------------------------------------
* ``NEUROHELIX PROMPT: <prompt_id>``
* ``RESPONSE FORMAT: <markdown|json|html>``
* markdown, optional: ``REQUIRED SECTIONS:`` followed by ``- <Section Name>``
  lines up to the next blank line -> one ``## <Section Name>`` per entry.
* json: ``ALLOWED CATEGORIES: a, b, c, ...`` -> a fenced ```` ```json ````
  object ``{"tags": [6 tags], "categories": [first 4 allowed]}``.
* html: a small ``<section>`` fragment, no scripts.

Token accounting is deterministic: ``promptTokenCount = ceil(len(prompt)/4)``
where *prompt* is every user text part of the request joined with ``"\\n"``
(for the real CLI that includes the ``<session_context>`` part it prepends),
``candidatesTokenCount = ceil(len(response)/4)``, total = sum.

Only ever binds 127.0.0.1.
"""


from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nh_assets.http_body import read_body
from nh_assets.demo.answers import count_tokens, render_fake_response
from nh_assets.demo.quota import QuotaCounter, auth_body
from nh_assets.demo.search import function_call, grounded_answer, read_turn, with_sources
from nh_assets.demo.web import FakeWeb

HOST = "127.0.0.1"
_PATH_RE = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


def _user_text(body: dict[str, Any]) -> str:
    contents = body.get("contents")
    if contents is None and isinstance(body.get("generateContentRequest"), dict):
        contents = body["generateContentRequest"].get("contents")
    texts: list[str] = []
    for content in contents or []:
        if not isinstance(content, dict) or content.get("role", "user") != "user":
            continue
        for part in content.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def request_text(body: dict[str, Any]) -> str:
    """All the text a request sends the model: system instruction, every turn, tool declarations.

    The fake tokenizer counts this, as the real API counts every input token it is sent."""
    pieces: list[str] = []
    system = body.get("systemInstruction") or {}
    pieces += [p.get("text", "") for p in (system.get("parts") or []) if isinstance(p, dict)]
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            if isinstance(part, dict):
                pieces.append(part["text"] if isinstance(part.get("text"), str) else json.dumps(part))
    if body.get("tools"):
        pieces.append(json.dumps(body["tools"]))
    return "\n".join(piece for piece in pieces if piece)


def request_facts(body: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """What the request log keeps of a request besides the prompt: its size and settings."""
    system = body.get("systemInstruction") or {}
    tools = body.get("tools") or []
    return {
        "bytes": len(raw),
        "system_chars": sum(len(p.get("text", "")) for p in (system.get("parts") or []) if isinstance(p, dict)),
        "tools": sorted(
            [d.get("name") for t in tools if isinstance(t, dict) for d in t.get("functionDeclarations") or []]
            + [name for t in tools if isinstance(t, dict) for name in t if name != "functionDeclarations"]
        ),
        "temperature": (body.get("generationConfig") or {}).get("temperature"),
        "thinking": (body.get("generationConfig") or {}).get("thinkingConfig"),
    }


def _error_body(code: int, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message or _STATUS_MESSAGES.get(code) or HTTPStatus(code).phrase,
            "status": _STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }


class FakeGeminiAPI:
    """Threaded fake Gemini API on ``127.0.0.1`` (random port by default).

    ``refusal(model, prompt)`` is the one place a subclass (the tests' failing
    APIs) decides that a generation request gets an error status instead of an
    answer; this server itself always answers. ``latency_s`` sleeps before
    every model request is answered.  Every request is recorded in
    :attr:`requests` and, if *log_path* is given, appended to it as one JSON
    line (``path, model, prompt, usage, response_text, status, time, kind``).
    Failed/404 requests are recorded with zero usage and ``response_text=""``.
    Grounded answers name their sources by redirect links this server also
    serves (``web``: they expire after ``redirect_ttl_s``, or when
    ``web.expire_redirects()`` is called); those GETs are not API requests and
    are not recorded.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        log_path: str | Path | None = None,
        port: int = 0,
        redirect_ttl_s: float | None = None,
        quotas: QuotaCounter | None = None,
        auth_status: int | None = None,
    ) -> None:
        self.latency_s = float(latency_s)
        self.web = FakeWeb(redirect_ttl_s)
        self.quotas = quotas  # per-model limits per minute and per day, answered as Google does
        self.auth_status = auth_status  # 401 or 403 to every request: credentials expired or refused
        self.log_path = Path(log_path) if log_path is not None else None
        self._port = int(port)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "FakeGeminiAPI":
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((HOST, self._port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-gemini-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeGeminiAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- introspection ------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGeminiAPI is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    # -- internals ----------------------------------------------------------
    def refusal(self, model: str, prompt: str) -> int | None:
        """The HTTP status to answer this generation request with instead of a reply, or None."""
        return None

    def model_version(self, model: str) -> str:
        """The ``modelVersion`` a response names: the model asked, unless a subclass routes it."""
        return model

    def finish_reason(self, model: str, prompt: str) -> str:
        """How the answer to this generation request ends; the tests' models override it."""
        return "STOP"

    def answer(self, model: str, prompt: str) -> str:
        """The model's text for this generation request; the tests' models override it."""
        return render_fake_response(prompt)

    def _record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self._requests.append(record)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")


def _make_handler(api: FakeGeminiAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "NeuroHelixFakeGemini/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        # ---- helpers ----
        def _read_body(self) -> bytes:
            return read_body(self)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode("utf-8"), "application/json; charset=UTF-8")

        def _record(self, path: str, model: str | None, prompt: str, status: int,
                    kind: str, response_text: str = "", usage: dict[str, int] | None = None,
                    body: dict[str, Any] | None = None, raw: bytes = b"") -> None:
            api._record({
                **request_facts(body or {}, raw),
                "path": path,
                "model": model,
                "prompt": prompt,
                "usage": usage or {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
                "response_text": response_text,
                "status": status,
                "time": time.time(),
                "kind": kind,
            })

        def _not_found(self) -> None:
            self._read_body()
            path = urlsplit(self.path).path
            self._record(path, None, "", 404, "not_found")
            self._send_json(404, _error_body(404, f"Method not found: {self.command} {path}"))

        do_PUT = do_DELETE = do_PATCH = _not_found  # type: ignore[assignment]

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if not api.web.handles(path):
                self._not_found()
                return
            status, headers, body = api.web.answer(path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            m = _PATH_RE.match(parts.path)
            method = m.group("method") if m else None
            if method not in ("streamGenerateContent", "generateContent", "countTokens"):
                self._not_found()
                return
            model = m.group("model")  # type: ignore[union-attr]
            raw = self._read_body()
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body is not an object")
            except ValueError as exc:
                self._record(parts.path, model, "", 400, "bad_request")
                self._send_json(400, _error_body(400, f"Invalid JSON payload received. {exc}"))
                return
            prompt = _user_text(body)
            if api.latency_s > 0:
                time.sleep(api.latency_s)
            if api.auth_status is not None:
                self._record(parts.path, model, prompt, api.auth_status, "auth", body=body, raw=raw)
                self._send_json(api.auth_status, auth_body(api.auth_status))
                return

            if method == "countTokens":
                n = count_tokens(prompt)
                self._record(parts.path, model, prompt, 200, "countTokens",
                             usage={"promptTokenCount": n, "candidatesTokenCount": 0, "totalTokenCount": n})
                self._send_json(200, {"totalTokens": n})
                return

            over_quota = api.quotas.take(model) if api.quotas is not None else None
            if over_quota is not None:
                self._record(parts.path, model, prompt, 429, "quota", body=body, raw=raw)
                self._send_json(429, over_quota)
                return

            status = api.refusal(model, prompt)
            if status is not None:
                self._record(parts.path, model, prompt, status, "error", body=body, raw=raw)
                self._send_json(status, _error_body(status))
                return

            turn = read_turn(body)
            grounding: dict[str, Any] | None = None
            if turn.grounding:  # the CLI's web-search model, with Google Search grounding
                found = grounded_answer(prompt, lambda path: api.web.redirect_for(api.base_url, path))
                text, out_parts, grounding, kind = found.text, [{"text": found.text}], found.metadata, "search"
            elif turn.search_declared and turn.search_results is None:
                text, out_parts, kind = "", [function_call(prompt)], "function_call"
            else:
                text = with_sources(api.answer(model, prompt), turn.search_results)
                out_parts, kind = [{"text": text}], method
            p, c = count_tokens(request_text(body)), count_tokens(text or json.dumps(out_parts))
            usage = {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
            self._record(parts.path, model, prompt, 200, kind, text, usage, body=body, raw=raw)
            finish = api.finish_reason(model, prompt) if kind != "function_call" else "STOP"
            # The CLI keys stats.models by the response's modelVersion.
            version = api.model_version(model)
            response_id = "fake-" + hashlib.sha256(f"{time.time_ns()}{text}".encode()).hexdigest()[:16]

            if method == "generateContent":
                candidate = {"content": {"role": "model", "parts": out_parts}, "finishReason": finish, "index": 0}
                if grounding:
                    candidate["groundingMetadata"] = grounding
                self._send_json(200, {
                    "candidates": [candidate],
                    "usageMetadata": usage,
                    "modelVersion": version,
                    "responseId": response_id,
                })
                return

            pieces = _split_text(text) if text and out_parts == [{"text": text}] else [None]
            chunks: list[dict[str, Any]] = []
            for i, piece in enumerate(pieces):
                piece_parts = out_parts if piece is None else [{"text": piece}]
                cand: dict[str, Any] = {"content": {"role": "model", "parts": piece_parts}, "index": 0}
                chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": version, "responseId": response_id}
                if i == len(pieces) - 1:
                    cand["finishReason"] = finish
                    chunk["usageMetadata"] = usage
                    if grounding:
                        cand["groundingMetadata"] = grounding
                chunks.append(chunk)
            if parse_qs(parts.query).get("alt") == ["sse"]:
                frames = [b"data: " + json.dumps(ch).encode("utf-8") + b"\r\n\r\n" for ch in chunks]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(sum(len(f) for f in frames)))
                self.end_headers()
                for frame in frames:
                    self.wfile.write(frame)
                    self.wfile.flush()
            else:  # the real API answers a JSON array without alt=sse
                self._send_json(200, chunks)

    return Handler


def _split_text(text: str, pieces: int = 3) -> list[str]:
    """Split *text* into up to *pieces* stream chunks at line boundaries."""
    lines = text.splitlines(keepends=True)
    if len(lines) < pieces:
        return [text]
    size = math.ceil(len(lines) / pieces)
    return ["".join(lines[i:i + size]) for i in range(0, len(lines), size)]
