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

import argparse
import hashlib
import html
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

__all__ = [
    "FAKE_LABEL",
    "FakeGeminiAPI",
    "count_tokens",
    "parse_prompt_contract",
    "render_fake_response",
    "main",
]

HOST = "127.0.0.1"
FAKE_LABEL = "demo output from NeuroHelix fake Gemini"

_PATH_RE = re.compile(r"^/(?:v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_PROMPT_ID_RE = re.compile(r"^[ \t]*NEUROHELIX PROMPT:[ \t]*(?P<v>\S[^\r\n]*?)[ \t]*$", re.M)
_FORMAT_RE = re.compile(r"^[ \t]*RESPONSE FORMAT:[ \t]*(?P<v>[A-Za-z]+)[ \t]*$", re.M)
_CATEGORIES_RE = re.compile(r"^[ \t]*ALLOWED CATEGORIES:[ \t]*(?P<v>[^\r\n]*)$", re.M)
_SECTIONS_RE = re.compile(r"^[ \t]*REQUIRED SECTIONS:[ \t]*$", re.M)

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

_FILLER = [
    "This paragraph stands in for real analysis of {pid}; no model was called.",
    "The NeuroHelix fake Gemini generated this sentence deterministically for {pid}.",
    "In demo mode {pid} receives placeholder findings so the pipeline can run offline.",
    "Treat every claim here as fictional: {pid} was answered by a local test server.",
    "A real run of {pid} would summarise current AI research at this point.",
    "Sources, numbers and names for {pid} are intentionally omitted in demo output.",
]
_GENERIC_SECTIONS = ["Summary", "Key Points", "Notes"]
_DEFAULT_TAGS = ["ai-research", "neurohelix", "daily-digest", "machine-learning", "demo", "llm"]


# --------------------------------------------------------------------------- #
# Deterministic response generation
# --------------------------------------------------------------------------- #
# Settings for a CLI home that talks to this server and nothing else. Every key was checked in the
# 0.61.0 bundle; without usageStatisticsEnabled=false the CLI posts usage logs to Google.
CLI_SETTINGS: dict[str, Any] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "telemetry": {"enabled": False},
    "tools": {"useRipgrep": False},
    "ui": {"showCompatibilityWarnings": False},
    "advanced": {"ignoreLocalEnv": True},
}


def write_cli_home(home: Path, settings: dict[str, Any] | None = None) -> Path:
    """Create ``home/.gemini/settings.json`` for a CLI pointed at this server; returns ``home``."""
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings or CLI_SETTINGS, indent=2), encoding="utf-8")
    return home


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per started block of 4 characters."""
    return math.ceil(len(text) / 4)


def parse_prompt_contract(prompt: str) -> dict[str, Any]:
    """Extract the renderer's markers from *prompt* (first occurrence wins:
    the renderer writes its header before any pasted source material, and the
    CLI's ``<session_context>`` part carries no markers).

    Returns ``{"prompt_id", "format", "sections", "categories"}``; missing
    markers give ``prompt_id="unlabelled-prompt"``, ``format="markdown"``.
    """
    m = _PROMPT_ID_RE.search(prompt)
    prompt_id = m.group("v") if m else "unlabelled-prompt"
    m = _FORMAT_RE.search(prompt)
    fmt = m.group("v").lower() if m else "markdown"
    if fmt not in ("markdown", "json", "html"):
        fmt = "markdown"

    sections: list[str] = []
    m = _SECTIONS_RE.search(prompt)
    if m:
        for line in prompt[m.end():].lstrip("\r\n").splitlines():
            stripped = line.strip()
            if not stripped:
                break
            if stripped.startswith("- "):
                name = stripped[2:].strip()
                if name:
                    sections.append(name)
            else:
                break

    categories: list[str] = []
    m = _CATEGORIES_RE.search(prompt)
    if m:
        categories = [c.strip() for c in m.group("v").split(",") if c.strip()]
    return {"prompt_id": prompt_id, "format": fmt, "sections": sections, "categories": categories}


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _bullets(prompt_id: str, salt: str) -> list[str]:
    seed = _seed(f"{prompt_id}\x00{salt}")
    n = 2 + seed % 2  # 2 or 3 bullets
    start = (seed >> 8) % len(_FILLER)
    return [_FILLER[(start + i) % len(_FILLER)].format(pid=prompt_id) for i in range(n)]


def _tags(prompt_id: str) -> list[str]:
    tags: list[str] = ["fake-gemini-demo"]
    words = [w for w in re.split(r"[^a-z0-9]+", prompt_id.lower()) if len(w) > 1]
    for candidate in words + _DEFAULT_TAGS:
        candidate = candidate[:24]
        if candidate not in tags:
            tags.append(candidate)
        if len(tags) == 6:
            break
    return tags


def render_fake_response(prompt: str) -> str:
    """Deterministic fake model answer for *prompt* (see module docstring)."""
    c = parse_prompt_contract(prompt)
    pid = c["prompt_id"]
    if c["format"] == "json":
        payload = {"tags": _tags(pid), "categories": c["categories"][:4]}
        return "```json\n" + json.dumps(payload, indent=2) + "\n```"
    if c["format"] == "html":
        esc = html.escape(pid)
        items = "".join(f"<li>{html.escape(b)}</li>" for b in _bullets(pid, "html"))
        return (
            f'<section class="nh-demo" data-fake="true">\n'
            f"<h2>{esc} ({FAKE_LABEL})</h2>\n"
            f"<p>This fragment was produced by the NeuroHelix fake Gemini server for {esc}; "
            f"it is placeholder content, not model output.</p>\n"
            f"<ul>{items}</ul>\n"
            f"</section>"
        )
    lines = [f"# {pid} ({FAKE_LABEL})", ""]
    for section in c["sections"] or _GENERIC_SECTIONS:
        lines.append(f"## {section}")
        lines.append("")
        lines.extend(f"- {b}" for b in _bullets(pid, section))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


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


def _error_body(code: int, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message or _STATUS_MESSAGES.get(code) or HTTPStatus(code).phrase,
            "status": _STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }


# --------------------------------------------------------------------------- #
# Server
# --------------------------------------------------------------------------- #
class FakeGeminiAPI:
    """Threaded fake Gemini API on ``127.0.0.1`` (random port by default).

    ``fail_first=N`` makes the first N *generation* requests answer
    ``fail_status`` with a Google-style error body; ``latency_s`` sleeps before
    every model request is answered.  Every request is recorded in
    :attr:`requests` and, if *log_path* is given, appended to it as one JSON
    line (``path, model, prompt, usage, response_text, status, time, kind``).
    Failed/404 requests are recorded with zero usage and ``response_text=""``.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 429,
        log_path: str | Path | None = None,
        port: int = 0,
    ) -> None:
        self.latency_s = float(latency_s)
        self.fail_first = int(fail_first)
        self.fail_status = int(fail_status)
        self.log_path = Path(log_path) if log_path is not None else None
        self._port = int(port)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._generation_count = 0
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
    def _next_generation_fails(self) -> bool:
        with self._lock:
            self._generation_count += 1
            return self._generation_count <= self.fail_first

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
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode("utf-8"), "application/json; charset=UTF-8")

        def _record(self, path: str, model: str | None, prompt: str, status: int,
                    kind: str, response_text: str = "", usage: dict[str, int] | None = None) -> None:
            api._record({
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

        do_GET = do_PUT = do_DELETE = do_PATCH = _not_found  # type: ignore[assignment]

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

            if method == "countTokens":
                n = count_tokens(prompt)
                self._record(parts.path, model, prompt, 200, "countTokens",
                             usage={"promptTokenCount": n, "candidatesTokenCount": 0, "totalTokenCount": n})
                self._send_json(200, {"totalTokens": n})
                return

            if api._next_generation_fails():
                status = api.fail_status
                self._record(parts.path, model, prompt, status, "error")
                self._send_json(status, _error_body(status))
                return

            text = render_fake_response(prompt)
            p, c = count_tokens(prompt), count_tokens(text)
            usage = {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
            self._record(parts.path, model, prompt, 200, method, text, usage)
            # The CLI keys stats.models by the response's modelVersion: echo the model.
            version = model
            response_id = "fake-" + hashlib.sha256(f"{time.time_ns()}{text}".encode()).hexdigest()[:16]

            if method == "generateContent":
                self._send_json(200, {
                    "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": usage,
                    "modelVersion": version,
                    "responseId": response_id,
                })
                return

            pieces = _split_text(text)
            chunks: list[dict[str, Any]] = []
            for i, piece in enumerate(pieces):
                cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}
                chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": version, "responseId": response_id}
                if i == len(pieces) - 1:
                    cand["finishReason"] = "STOP"
                    chunk["usageMetadata"] = usage
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nh_assets.demo_gemini_api",
        description="Serve the NeuroHelix fake Gemini API on 127.0.0.1 (demo mode / tests).",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = random)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to sleep before each answer")
    parser.add_argument("--log", default=None, help="append one JSON line per request to this file")
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N generation requests")
    parser.add_argument("--fail-status", type=int, default=429, help="HTTP status used by --fail-first")
    args = parser.parse_args(argv)
    api = FakeGeminiAPI(latency_s=args.latency, fail_first=args.fail_first,
                        fail_status=args.fail_status, log_path=args.log, port=args.port)
    api.start()
    print(api.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
