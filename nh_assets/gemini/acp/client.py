"""The step's side of the warm pool: find (or start) this machine's pool, ask it one prompt.

Starting is guarded by a file lock beside the pool's socket, so when many steps start at once
exactly one pool process is spawned and the others wait for its socket. The pool is spawned
detached (its own session, no inherited descriptors, stderr to ``<key>.log``) so it survives the
step that started it; its configuration, credentials included, goes over a pipe, never through
argv or a file.

Anything that keeps the pool from handling the prompt before the prompt reached the model
raises ``PoolUnavailable``, and the resource makes today's one-shot call instead, saying why.
What happened to the prompt itself comes back as a ``GeminiFailure`` of the same kinds as a
one-shot call.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nh_assets.gemini.acp import endpoint
from nh_assets.gemini.api_gate import GateLedger
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.usage import ModelUsage

SPAWN_WAIT_S = 30.0
# The pool waits for process slots and rate slots on the step's behalf; beyond this it is stuck.
MAX_SLOT_WAIT_S = 3600.0


class PoolUnavailable(Exception):
    """The pool cannot take this prompt; the message says why (for the step's log)."""


@dataclass(frozen=True)
class PoolAnswer:
    response: str
    usage: dict[str, ModelUsage]
    gate: GateLedger
    duration_s: float
    slot_wait_s: float
    warnings: list[str] = field(default_factory=list)


def quota_mismatches(quota: dict, usage: dict[str, ModelUsage]) -> list[str]:
    """The CLI's own per-model figures (``_meta.quota``) against what the gate read, per model."""
    found = []
    for entry in quota.get("model_usage") or []:
        model = str(entry.get("model"))
        counts = entry.get("token_count") or {}
        seen = usage.get(model, ModelUsage())
        # The CLI reports the prompt's full input; the gate's input excludes cached tokens.
        if int(counts.get("output_tokens") or 0) != seen.output_tokens:
            found.append(
                f"{model}: the CLI reports {counts.get('output_tokens')} output tokens, the gate read {seen.output_tokens}"
            )
    return found


class PoolClient:
    """Built per call from the resource's fields; holds nothing between calls."""

    def __init__(self, *, config: dict, cli_env: dict[str, str], directory: Path, secrets: list[str]):
        self.config = config
        self.cli_env = cli_env
        self.secrets = secrets
        self.directory = directory
        self.key = endpoint.pool_key(config, cli_env)
        self.socket_path = directory / f"{self.key}.sock"

    # -- reaching the pool ------------------------------------------------------------------------

    def _connect(self, timeout_s: float | None) -> socket.socket | None:
        try:
            return endpoint.connect(self.socket_path, timeout_s)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        except OSError as exc:
            raise PoolUnavailable(f"cannot reach the pool's socket {self.socket_path}: {exc.strerror or exc}") from None

    def _spawn(self, timeout_s: float | None) -> socket.socket:
        payload = json.dumps(
            {**self.config, "key": self.key, "directory": str(self.directory), "cli_env": self.cli_env,
             "secrets": self.secrets}
        )
        with open(self.directory / f"{self.key}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nh_assets.gemini.acp.service"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                cwd=str(self.directory), start_new_session=True, close_fds=True,
            )
        assert proc.stdin is not None
        proc.stdin.write(payload.encode())
        proc.stdin.close()
        deadline = time.monotonic() + SPAWN_WAIT_S
        while time.monotonic() < deadline:
            sock = self._connect(timeout_s)
            if sock is not None:
                return sock
            if proc.poll() is not None:
                raise PoolUnavailable(
                    f"the pool exited at start (code {proc.returncode}); see {self.directory / (self.key + '.log')}"
                )
            time.sleep(0.05)
        raise PoolUnavailable(f"the pool did not accept connections within {SPAWN_WAIT_S:.0f}s")

    def connect(self, timeout_s: float | None) -> socket.socket:
        """A connection to this machine's pool, starting it first if none runs."""
        sock = self._connect(timeout_s)
        if sock is not None:
            return sock
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise PoolUnavailable(f"cannot create {self.directory}: {exc.strerror}") from None
        with endpoint.file_lock(self.directory / f"{self.key}.start.lock", blocking=True):
            return self._connect(timeout_s) or self._spawn(timeout_s)

    def ask(self, request: dict, timeout_s: float | None) -> dict:
        sock = self.connect(timeout_s)
        try:
            with sock, sock.makefile("rwb") as stream:
                stream.write((json.dumps(request) + "\n").encode())
                stream.flush()
                line = stream.readline()
        except (OSError, socket.timeout) as exc:
            raise PoolUnavailable(f"lost the pool mid-request: {exc}") from None
        if not line:
            raise PoolUnavailable("the pool closed the connection without an answer")
        try:
            return json.loads(line)
        except ValueError:
            raise PoolUnavailable("the pool's answer does not parse") from None

    def ping(self) -> dict:
        return self.ask({"op": "ping"}, 10.0)

    # -- one prompt ---------------------------------------------------------------------------------

    def generate(self, *, prompt: str, call: ModelCall) -> PoolAnswer:
        request = {
            "op": "prompt",
            "owner": list(endpoint.owner_of()),
            "prompt": prompt,
            "call": {
                "model": call.model, "timeout_s": call.timeout_s, "approval_mode": call.approval_mode,
            },
            "settings": call.settings(),
        }
        reply = self.ask(request, MAX_SLOT_WAIT_S + call.timeout_s + 60.0)
        if "unavailable" in reply:
            raise PoolUnavailable(str(reply["unavailable"]))
        if not reply.get("ok"):
            failure = reply.get("failure") or {}
            try:
                kind = FailureKind(failure.get("kind"))
            except ValueError:
                kind = FailureKind.OTHER
            raise GeminiFailure(kind, str(failure.get("cause") or "the pool gave no cause"))
        usage = {model: ModelUsage.from_dict(entry) for model, entry in (reply.get("usage") or {}).items()}
        gate = GateLedger(
            requests=Counter(reply["gate"]["requests"]), waited_s=float(reply["gate"]["waited_s"]),
            answered_by=str(reply.get("answered_by") or ""),
        )
        gate.seen.finish_reasons.update(reply.get("finish_reasons") or {})
        warnings = quota_mismatches(reply.get("quota") or {}, usage)
        if reply.get("stop_reason") not in ("end_turn", None):
            warnings.append(f"the CLI stopped the prompt early: {reply['stop_reason']}")
        return PoolAnswer(
            response=str(reply["response"]), usage=usage, gate=gate, duration_s=float(reply["duration_s"]),
            slot_wait_s=float(reply["slot_wait_s"]), warnings=warnings,
        )


def client_for(resource, *, cli: str, cli_env: dict[str, str], upstreams: dict[str, str], secrets: list[str]) -> PoolClient:
    """The pool client for a ``GeminiCLIResource``'s configuration (duck-typed: no import cycle)."""
    slots_dir = resource.process_slots_dir or str(Path(resource.rate_limit_db).parent / "gemini_process_slots")
    config = {
        "cli": cli,
        "upstreams": upstreams,
        "own_home": bool(resource.api_base_url),
        "workdir_root": str(Path(resource.workdir_root).resolve()),
        "slots_dir": str(Path(slots_dir).resolve()),
        "max_processes": resource.max_processes,
        "rate": {
            "backend": resource.rate_limit_backend, "sqlite_path": str(Path(resource.rate_limit_db).resolve()),
            "postgres_url": resource.rate_limit_postgres_url, "per_minute": resource.rate_per_minute,
            "per_day": resource.rate_per_day, "model_quotas": dict(resource.model_quotas),
        },
        "kill_grace_s": resource.kill_grace_s,
        "idle_s": resource.pool_idle_s,
        "skip_trust": resource.skip_trust,
    }
    return PoolClient(
        config=config, cli_env=cli_env, directory=endpoint.pool_dir(str(Path(resource.rate_limit_db).resolve())),
        secrets=secrets,
    )
