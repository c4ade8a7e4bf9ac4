"""The rate gate: the rate limit applied where the quota applies, at each API request.

One CLI call is not one request: with a tool declared, the model asks for ``google_web_search``,
the CLI runs the search as a second request on another model and sends the results back in a
third, and the CLI retries 429s and 5xx by itself. So the CLI, one-shot or warm, talks to a gate
on 127.0.0.1 (``GOOGLE_GEMINI_BASE_URL`` for API-key auth, ``CODE_ASSIST_ENDPOINT`` for a Google
login), which takes a rate permit from the shared bucket for every generation request right
before forwarding it upstream. It forwards every request and streams every answer through
unchanged.

Every request crosses it, so it is also where a call's usage is read, the same way on both
transports: each generation answer's ``usageMetadata`` (the last chunk of a stream carries the
request's total), per model. When the bucket refuses (the day cap is used up, the store is
unreachable) the gate answers 400, which the CLI does not retry, and the call reports the gate's
reason.

It also reads each answer for what the service said: a 429's quota account and a 401/403 go to
its ``GateGuard`` (which remembers a spent day or refused credentials for every process,
``service_memory``), and a whole answer's ``finishReason`` and ``modelVersion`` go into the
ledger (``answer_check``). The guard is asked before each request too: a spent model, or one
whose own declared quota is used up (``model_quotas``), is refused there.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nh_assets.gemini.answer_check import AnswerSeen
from nh_assets.gemini.failures import FailureKind
from nh_assets.gemini.grounding import Grounding, grounding_of_exchange
from nh_assets.gemini.quota import QuotaError, parse_quota_error
from nh_assets.gemini.rate_limit import DailyCapExceeded, SharedRateLimit
from nh_assets.gemini.rate_limit_stores import RateLimitStoreError
from nh_assets.gemini.usage import ModelUsage, usage_of_answer
from nh_assets.http_body import read_body

GEMINI_API_URL = "https://generativelanguage.googleapis.com"
CODE_ASSIST_URL = "https://cloudcode-pa.googleapis.com"
_GENERATION = re.compile(r":(?:stream)?[gG]enerateContent\b")
_MODEL_IN_PATH = re.compile(r"/models/(?P<model>[^/:?]+):")
# Hop-by-hop headers and the ones the gate sets itself.
_SKIP_REQUEST = {"host", "connection", "content-length", "transfer-encoding", "keep-alive", "proxy-connection"}
_SKIP_RESPONSE = {"connection", "content-length", "transfer-encoding", "keep-alive"}
UPSTREAM_TIMEOUT_S = 600.0


class GateRefusal(Exception):
    """The bucket will not give a permit: ``kind`` is the failure the call reports (the day cap, or
    a store that failed)."""

    def __init__(self, kind: FailureKind, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass
class GateLedger:
    """What crossed the gates during one prompt: requests admitted (what the quota sees), the
    usage their answers reported, the time spent waiting for rate permits, and a refusal."""

    requests: Counter = field(default_factory=Counter)  # generation requests per model
    usage: dict[str, ModelUsage] = field(default_factory=dict)  # per model, as the answers report it
    waited_s: float = 0.0
    refusal: GateRefusal | None = None
    grounding: Grounding = field(default_factory=Grounding)  # what the searches returned
    statuses: Counter = field(default_factory=Counter)  # error statuses of generation requests
    quota: list[tuple[str, QuotaError]] = field(default_factory=list)  # (model, what each 429 said)
    seen: AnswerSeen = field(default_factory=AnswerSeen)  # how the answers ended, which model wrote them
    answered_by: str = ""  # the model of the last answer that came back whole (its modelVersion)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def __add__(self, other: GateLedger) -> GateLedger:
        usage = dict(self.usage)
        for model, entry in other.usage.items():
            usage[model] = usage.get(model, ModelUsage()) + entry
        return GateLedger(
            requests=self.requests + other.requests, usage=usage, waited_s=self.waited_s + other.waited_s,
            refusal=self.refusal or other.refusal, grounding=self.grounding + other.grounding,
            statuses=self.statuses + other.statuses, quota=self.quota + other.quota, seen=self.seen + other.seen,
            answered_by=other.answered_by or self.answered_by,
        )


def summed(ledgers: Iterable[GateLedger]) -> GateLedger:
    return sum(ledgers, GateLedger())


def is_generation(path: str) -> bool:
    return bool(_GENERATION.search(path))


def model_of(path: str, body: bytes) -> str:
    match = _MODEL_IN_PATH.search(path)
    if match:
        return match.group("model")
    try:  # Code Assist names the model in the body
        return str(json.loads(body or b"{}").get("model") or "unknown")
    except ValueError:
        return "unknown"


class GateGuard:
    """What holds per model beyond one call (its own quota, what the service said of it):
    consulted before each generation request, told of each error answer. This one holds nothing."""

    def admit(self, model: str) -> float:
        """The seconds waited for the model's own rate permit; ``GateRefusal`` when it must not be
        asked now."""
        return 0.0

    def observe(self, model: str, status: int, quota: QuotaError | None) -> None:
        """An error answer for ``model``, with what a 429 said of its quota."""


class RateGate:
    """A forwarding HTTP server on 127.0.0.1 in front of one upstream API."""

    def __init__(self, upstream: str, take_permit: Callable[[Callable[[str], None] | None], float], guard: GateGuard | None = None):
        """``take_permit(log)`` blocks until the shared bucket gives one rate permit, telling a
        wait to ``log`` (or to its own default when None), and returns the seconds it waited; it
        raises ``GateRefusal`` when no permit will come."""
        self.upstream = upstream.rstrip("/")
        self._take_permit = take_permit
        self._guard = guard or GateGuard()
        self._lock = threading.Lock()
        self._ledger = GateLedger()
        self._log: Callable[[str], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # ``close`` waits for the loop's next poll, at the end of every run: a tenth of a second, not half.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="gemini-rate-gate", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def begin(self, log: Callable[[str], None] | None = None) -> None:
        """Start a new ledger: one prompt at a time goes through a gate. ``log`` is where that
        prompt's waits for a permit are told (its step's log), when the gate is lent to steps in turn."""
        with self._lock:
            self._ledger = GateLedger()
            self._log = log

    def ledger(self) -> GateLedger:
        with self._lock:
            return self._ledger

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _admit(self, path: str, body: bytes) -> None:
        if not is_generation(path):
            return
        ledger = self.ledger()
        try:
            waited = self._guard.admit(model_of(path, body))
            waited += self._take_permit(self._log)
        except GateRefusal as refusal:
            with self._lock:
                ledger.refusal = refusal
            raise
        with self._lock:
            ledger.requests[model_of(path, body)] += 1
            ledger.waited_s += waited

    def _observe(self, path: str, request_body: bytes, status: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The answer passed on unchanged, read on its way through. What it reported is recorded
        once its last chunk has gone and before the body's end is written: the CLI cannot finish
        its turn (nor the warm CLI service read this prompt's ledger) until it has read that end."""
        if not is_generation(path):
            yield from chunks
            return
        seen: list[bytes] = []
        for chunk in chunks:
            seen.append(chunk)
            yield chunk
        self._record(path, request_body, status, b"".join(seen))

    def _record(self, path: str, request_body: bytes, status: int, answer: bytes) -> None:
        """What one answer said: its usage, grounding and how it ended, or an error's status and
        quota account (which the guard hears of too)."""
        model = model_of(path, request_body)
        grounding = grounding_of_exchange(request_body, status, answer)
        ledger = self.ledger()
        if status == 200:
            found = usage_of_answer(answer)
            ended = AnswerSeen()
            ended.read(answer)
            with self._lock:
                if found is not None:
                    key = found[0] or model
                    ledger.usage[key] = ledger.usage.get(key, ModelUsage()) + found[1]
                ledger.grounding.add(grounding)
                ledger.seen.merge(ended)
                ledger.answered_by = next(iter(ended.model_versions), model)
            return
        quota = parse_quota_error(answer) if status == 429 else None
        with self._lock:
            ledger.grounding.add(grounding)
            ledger.statuses[status] += 1
            if quota is not None:
                ledger.quota.append((model, quota))
        self._guard.observe(model, status, quota)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                return read_body(self)

            def _answer(self, status: int, headers: list[tuple[str, str]], chunks: Iterable[bytes]) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _SKIP_RESPONSE:
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    if chunk:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def _refuse(self, refusal: GateRefusal) -> None:
                body = json.dumps(
                    {"error": {"code": 400, "message": f"NeuroHelix rate gate: {refusal}", "status": "FAILED_PRECONDITION"}}
                ).encode()
                self._answer(400, [("Content-Type", "application/json")], [body])

            def _forward(self) -> None:
                body = self._body() if self.command in ("POST", "PUT", "PATCH") else b""
                try:
                    gate._admit(self.path, body)
                except GateRefusal as refusal:
                    self._refuse(refusal)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP_REQUEST}
                request = urllib.request.Request(
                    gate.upstream + self.path, data=body if body or self.command == "POST" else None,
                    headers=headers, method=self.command,
                )
                try:
                    response = urllib.request.urlopen(request, timeout=UPSTREAM_TIMEOUT_S)
                except urllib.error.HTTPError as error:
                    response = error
                except (urllib.error.URLError, OSError) as exc:
                    reason = getattr(exc, "reason", exc)
                    message = json.dumps({"error": {"code": 502, "message": f"upstream unreachable: {reason}"}})
                    self._answer(502, [("Content-Type", "application/json")], [message.encode()])
                    return
                # read1 hands each streamed (SSE) chunk on as it arrives; an HTTPError body is small.
                read = getattr(response, "read1", None) or response.read

                with response:
                    chunks = gate._observe(self.path, body, response.status, iter(lambda: read(65536), b""))
                    self._answer(response.status, list(response.headers.items()), chunks)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _forward

        return Forward


def permit_taker(limiter: SharedRateLimit, log: Callable[[str], None]) -> Callable[[Callable[[str], None] | None], float]:
    """A gate's ``take_permit`` over the shared bucket: the seconds it waited, or ``GateRefusal``
    when no permit will come."""

    def take_permit(call_log: Callable[[str], None] | None = None) -> float:
        try:
            return limiter.acquire(call_log or log).waited_s
        except DailyCapExceeded as exc:
            raise GateRefusal(FailureKind.DAILY_CAP, str(exc)) from None
        except (RateLimitStoreError, OSError) as exc:
            raise GateRefusal(FailureKind.RATE_LIMIT_STORE, f"the shared bucket failed: {exc}") from None

    return take_permit
