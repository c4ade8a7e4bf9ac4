"""One Gemini CLI kept running in ACP mode (``gemini --acp``): JSON-RPC 2.0 over its stdin/stdout.

The Agent Client Protocol as 0.61.0 speaks it: ``initialize`` once (the CLI's whole start-up,
~1.5 s of CPU), then per prompt ``session/new`` with a working directory and
``session/prompt``, while the CLI streams ``session/update`` notifications; the prompt's text is
the concatenation of its ``agent_message_chunk`` updates, and its result carries the stop reason
and ``_meta.quota``. ``session/cancel`` (a notification) aborts a prompt, which then answers
``stopReason: cancelled``. The CLI may ask the client for permission to run a tool
(``session/request_permission``); a research call never grants one, as the one-shot headless
call never does. Closing stdin ends the CLI (it exits 0 at once), so a service that dies takes its
CLIs with it. A CLI that asks a person to log in on this channel is ended at once (``LoginRequired``).
"""

from __future__ import annotations

import collections
import itertools
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nh_assets.subprocesses import kill_group

PROTOCOL_VERSION = 1
_STDERR_KEEP = 8192
# 0.61.0 counts ACP mode as interactive: with its cached Google login not refreshable and the browser
# suppressed (NO_BROWSER), it asks for an authorization code on stdout and reads it from stdin, this
# connection's channel, for up to 5 minutes (``authWithUserCode``), taking our requests for codes.
_LOGIN_PROMPTS = (b"Please visit the following URL to authorize the application", b"Enter the authorization code")


class AcpError(Exception):
    """A JSON-RPC error answer from the CLI."""

    def __init__(self, code: int, message: str):
        super().__init__(f"ACP error {code}: {message}")
        self.code = code
        self.message = message


class CliExited(Exception):
    """The CLI's stdout closed: the process ended (crashed, killed, or closed by us)."""


class LoginRequired(CliExited):
    """The CLI asked for a new Google login, which needs a person: it was ended at once."""


class PromptTimedOut(Exception):
    """The prompt outlived its deadline; ``cancelled`` says whether the CLI acknowledged the cancel."""

    def __init__(self, cancelled: bool):
        super().__init__("prompt timed out")
        self.cancelled = cancelled


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: Exception | None = None


@dataclass(frozen=True)
class PromptOutcome:
    text: str
    stop_reason: str
    quota: dict


class AcpConnection:
    """A running ``gemini --acp`` and the client side of its JSON-RPC connection."""

    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        pass_fds: tuple[int, ...] = (),
        redact: Callable[[str], str] = lambda text: text,
    ):
        self._redact = redact
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._texts: dict[str, list[str]] = {}
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._login_asked = False
        self.exited = threading.Event()
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            # Its own group, so a timeout or a retirement reaches every helper it started.
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self.pid = self.proc.pid
        threading.Thread(target=self._read_stdout, name=f"acp-out-{self.pid}", daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, name=f"acp-err-{self.pid}", daemon=True)
        self._stderr_reader.start()

    # -- the wire -------------------------------------------------------------------------------

    def _send(self, message: dict) -> None:
        data = (json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode()
        try:
            with self._write_lock:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._exit_error() from None

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                # The CLI's own stray output (the protocol is one JSON object per line), unless it
                # asks for a login: nobody will answer, so it ends now rather than at its 5-minute timeout.
                if any(prompt in line for prompt in _LOGIN_PROMPTS) and not self._login_asked:
                    self._login_asked = True
                    kill_group(self.pid)
                continue
            if isinstance(message, dict):
                self._dispatch(message)
        self.proc.wait()
        self.exited.set()
        with self._lock:
            pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.error = self._exit_error()
            entry.done.set()

    def _exit_error(self) -> CliExited:
        if self._login_asked:
            return LoginRequired("the CLI asked for a Google login (an authorization code) and was ended")
        return CliExited(self.describe_exit())

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            with self._lock:
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size > _STDERR_KEEP and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())

    def _dispatch(self, message: dict) -> None:
        method = message.get("method")
        if method is None:
            with self._lock:
                entry = self._pending.pop(message.get("id"), None)
            if entry is not None:
                error = message.get("error")
                if isinstance(error, dict):
                    entry.error = AcpError(int(error.get("code") or 0), str(error.get("message") or ""))
                else:
                    entry.result = message.get("result")
                entry.done.set()
        elif method == "session/update":
            params = message.get("params") or {}
            update = params.get("update") or {}
            content = update.get("content") or {}
            if update.get("sessionUpdate") == "agent_message_chunk" and content.get("type") == "text":
                with self._lock:
                    self._texts.setdefault(params.get("sessionId"), []).append(str(content.get("text") or ""))
        elif "id" in message:
            self._answer_request(message)

    def _answer_request(self, message: dict) -> None:
        """Requests from the CLI to us. A tool needing approval is refused, as in a headless call."""
        if message.get("method") == "session/request_permission":
            options = (message.get("params") or {}).get("options") or []
            reject = next((o for o in options if str(o.get("kind", "")).startswith("reject")), None)
            outcome = (
                {"outcome": "selected", "optionId": reject["optionId"]} if reject else {"outcome": "cancelled"}
            )
            reply: dict = {"id": message["id"], "result": {"outcome": outcome}}
        else:
            reply = {"id": message["id"], "error": {"code": -32601, "message": "not offered by this client"}}
        try:
            self._send(reply)
        except CliExited:
            pass

    def _start(self, method: str, params: dict) -> tuple[int, _Pending]:
        request_id = next(self._ids)
        entry = _Pending()
        with self._lock:
            if self.exited.is_set():
                raise self._exit_error()
            self._pending[request_id] = entry
        self._send({"id": request_id, "method": method, "params": params})
        return request_id, entry

    @staticmethod
    def _outcome(entry: _Pending) -> object:
        if entry.error is not None:
            raise entry.error
        return entry.result

    def request(self, method: str, params: dict, timeout_s: float) -> object:
        request_id, entry = self._start(method, params)
        if not entry.done.wait(timeout_s):
            with self._lock:
                self._pending.pop(request_id, None)
            raise TimeoutError(f"{method} got no answer within {timeout_s:.0f}s")
        return self._outcome(entry)

    # -- the protocol -----------------------------------------------------------------------------

    def initialize(self, timeout_s: float) -> dict:
        result = self.request(
            "initialize",
            # No file-system or terminal capability: the CLI keeps its own, sandboxed to the session's folder.
            {"protocolVersion": PROTOCOL_VERSION, "clientCapabilities": {}},
            timeout_s,
        )
        return result if isinstance(result, dict) else {}

    def authenticate(self, method_id: str, base_url: str, timeout_s: float) -> None:
        """Point every later ``session/new`` at ``base_url`` (``_meta.gateway``; 0.61.0 applies it to the
        session's content generator whatever the auth type). The CLI also stores ``method_id`` as the user
        settings' auth type, and clears its cached Google credentials when that type changes: callers pass
        the type the settings already hold."""
        self.request("authenticate", {"methodId": method_id, "_meta": {"gateway": {"baseUrl": base_url}}}, timeout_s)

    def new_session(self, cwd: str, timeout_s: float) -> str:
        result = self.request("session/new", {"cwd": cwd, "mcpServers": []}, timeout_s)
        if not isinstance(result, dict) or not isinstance(result.get("sessionId"), str):
            raise AcpError(-32603, "session/new answered without a sessionId")
        return result["sessionId"]

    def prompt(
        self, session_id: str, text: str, *, deadline: float, grace_s: float, abandoned: threading.Event
    ) -> PromptOutcome:
        """Run one prompt to its end; past ``deadline`` (or when ``abandoned`` is set) cancel it."""
        _, entry = self._start(
            "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
        )
        while not entry.done.wait(0.1):
            if time.monotonic() >= deadline or abandoned.is_set():
                try:
                    self._send({"method": "session/cancel", "params": {"sessionId": session_id}})
                except CliExited:
                    pass
                acknowledged = entry.done.wait(grace_s) and entry.error is None
                with self._lock:
                    self._texts.pop(session_id, None)
                raise PromptTimedOut(cancelled=acknowledged)
        result = self._outcome(entry)
        with self._lock:
            chunks = self._texts.pop(session_id, [])
        result = result if isinstance(result, dict) else {}
        quota = (result.get("_meta") or {}).get("quota") or {}
        return PromptOutcome("".join(chunks), str(result.get("stopReason") or ""), quota)

    # -- the process ------------------------------------------------------------------------------

    def stderr_tail(self) -> str:
        with self._lock:
            data = b"".join(self._stderr)
        return self._redact(data.decode("utf-8", errors="replace"))

    def first_error_line(self) -> str:
        """What the CLI said on stderr before it exited (once it has), for a one-line cause."""
        self._stderr_reader.join(timeout=1.0)
        lines = [line.strip() for line in self.stderr_tail().splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""

    def describe_exit(self, wait_s: float = 1.0) -> str:
        # Waited for, not polled: while the reader thread is in ``wait()`` a ``poll()`` from
        # another thread returns None even for a CLI that has exited, and the cause read
        # "closed its output" or "exited with code 1" depending on which thread ran first.
        try:
            code = self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            return "the CLI closed its output"
        return f"the CLI exited with signal {-code}" if code < 0 else f"the CLI exited with code {code}"

    def close(self, grace_s: float = 2.0) -> None:
        """End the CLI: stdin closed (it exits by itself), then its whole group killed."""
        try:
            with self._write_lock:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        kill_group(self.pid)
        self.proc.wait()

    def kill(self) -> None:
        kill_group(self.pid)
        self.proc.wait()
