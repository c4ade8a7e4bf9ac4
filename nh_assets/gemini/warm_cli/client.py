"""The step's side of the warm CLI service: find (or start) this machine's service, ask it one prompt.

Starting is guarded by a file lock beside the service's socket, so when many steps start at once
exactly one service process is spawned and the others wait for its socket. The service is
spawned detached (its own session, no inherited descriptors, stderr to ``<key>.log``) so it
survives the step that started it; its configuration, credentials included, goes over a pipe,
never through argv or a file.

Anything that keeps the service from handling the prompt before the prompt reached the model
raises ``WarmCliUnavailable``, and the resource makes a one-shot call instead, saying why. What
happened to the prompt itself comes back as a ``GeminiFailure`` of the same kinds as a one-shot
call: the one exception pair of both sides.
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

from nh_assets import cancellation
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.config import GeminiConfig
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.grounding import Grounding
from nh_assets.gemini.rate_gate import GateLedger
from nh_assets.gemini.usage import ModelUsage, mismatches
from nh_assets.gemini.warm_cli import endpoint

SPAWN_WAIT_S = 30.0
# The service waits for process and rate permits on the step's behalf; beyond this it is stuck.
MAX_PERMIT_WAIT_S = 3600.0


class WarmCliUnavailable(Exception):
    """The warm CLI service cannot take this prompt; the message says why (for the step's log)."""


@dataclass(frozen=True)
class WarmCliAnswer:
    response: str
    gate: GateLedger
    duration_s: float
    permit_wait_s: float
    warnings: list[str] = field(default_factory=list)


def quota_usage(quota: dict) -> dict[str, ModelUsage]:
    """The CLI's own per-model figures of a warm prompt (``_meta.quota``): tokens, no request counts."""
    found = {}
    for entry in quota.get("model_usage") or []:
        counts = entry.get("token_count") or {}
        found[str(entry.get("model"))] = ModelUsage(
            input_tokens=int(counts.get("input_tokens") or 0), output_tokens=int(counts.get("output_tokens") or 0)
        )
    return found


@dataclass(frozen=True)
class ServiceStart:
    """What one warm CLI service runs with: the Gemini configuration, and what the step resolved
    from it (the executable, the environment, the upstreams its gates forward to)."""

    gemini: GeminiConfig
    cli: str
    cli_env: dict[str, str]
    upstreams: dict[str, str]
    secrets: list[str]

    @property
    def key(self) -> str:
        return endpoint.service_key({**self.gemini.model_dump(), "cli": self.cli, "upstreams": self.upstreams}, self.cli_env)

    def to_json(self) -> str:
        return json.dumps(
            {"gemini": self.gemini.model_dump(), "cli": self.cli, "cli_env": self.cli_env,
             "upstreams": self.upstreams, "secrets": self.secrets}
        )

    @classmethod
    def from_json(cls, text: str) -> ServiceStart:
        doc = json.loads(text)
        return cls(**{**doc, "gemini": GeminiConfig(**doc["gemini"])})


class WarmCliClient:
    """Built per call from the resource's configuration; holds nothing between calls."""

    def __init__(self, start: ServiceStart):
        self.start = start
        self.directory = start.gemini.warm_cli_dir
        self.key = start.key
        self.socket_path = self.directory / f"{self.key}.sock"

    # -- reaching the service ----------------------------------------------------------------------

    def _connect(self, timeout_s: float | None) -> socket.socket | None:
        try:
            return endpoint.connect(self.socket_path, timeout_s)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        except OSError as exc:
            raise WarmCliUnavailable(
                f"cannot reach the warm CLI service's socket {self.socket_path}: {exc.strerror or exc}"
            ) from None

    def _spawn(self, timeout_s: float | None) -> socket.socket:
        payload = self.start.to_json()
        with open(self.directory / f"{self.key}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nh_assets.gemini.warm_cli.service"],
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
                raise WarmCliUnavailable(
                    f"the warm CLI service exited at start (code {proc.returncode}); "
                    f"see {self.directory / (self.key + '.log')}"
                )
            time.sleep(0.05)
        raise WarmCliUnavailable(f"the warm CLI service did not accept connections within {SPAWN_WAIT_S:.0f}s")

    def connect(self, timeout_s: float | None) -> socket.socket:
        """A connection to this machine's service, starting it first if none runs."""
        sock = self._connect(timeout_s)
        if sock is not None:
            return sock
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise WarmCliUnavailable(f"cannot create {self.directory}: {exc.strerror}") from None
        with endpoint.file_lock(self.directory / f"{self.key}.start.lock", blocking=True):
            return self._connect(timeout_s) or self._spawn(timeout_s)

    def ask(self, request: dict, timeout_s: float | None) -> dict:
        sock = self.connect(timeout_s)
        try:
            # A terminated run ends the wait; the service sees the connection go and cancels the prompt.
            with sock, sock.makefile("rwb") as stream, cancellation.stoppable(lambda: _shut(sock)):
                stream.write((json.dumps(request) + "\n").encode())
                stream.flush()
                line = stream.readline()
            cancellation.raise_if_cancelled()
        except (OSError, socket.timeout) as exc:
            cancellation.raise_if_cancelled()
            raise WarmCliUnavailable(f"lost the warm CLI service mid-request: {exc}") from None
        if not line:
            raise WarmCliUnavailable("the warm CLI service closed the connection without an answer")
        try:
            return json.loads(line)
        except ValueError:
            raise WarmCliUnavailable("the warm CLI service's answer does not parse") from None

    def ping(self) -> dict:
        return self.ask({"op": "ping"}, 10.0)

    # -- one prompt ---------------------------------------------------------------------------------

    def generate(self, *, prompt: str, call: ModelCall) -> WarmCliAnswer:
        request = {
            "op": "prompt",
            "owner": list(endpoint.owner_of()),
            "prompt": prompt,
            "call": {
                "model": call.model, "timeout_s": call.timeout_s, "approval_mode": call.approval_mode,
            },
            "settings": call.settings(),
        }
        reply = self.ask(request, MAX_PERMIT_WAIT_S + call.timeout_s + 60.0)
        if "unavailable" in reply:
            raise WarmCliUnavailable(str(reply["unavailable"]))
        if not reply.get("ok"):
            failure = reply.get("failure") or {}
            try:
                kind = FailureKind(failure.get("kind"))
            except ValueError:
                kind = FailureKind.OTHER
            raise GeminiFailure(kind, str(failure.get("cause") or "the warm CLI service gave no cause"))
        usage = {model: ModelUsage.from_dict(entry) for model, entry in (reply["gate"]["usage"] or {}).items()}
        gate = GateLedger(
            requests=Counter(reply["gate"]["requests"]), usage=usage, waited_s=float(reply["gate"]["waited_s"]),
            grounding=Grounding.from_json(reply["gate"].get("grounding")),
            answered_by=str(reply["gate"].get("answered_by") or ""),
        )
        gate.seen.finish_reasons.update(reply["gate"].get("finish_reasons") or {})
        warnings = mismatches(usage, quota_usage(reply.get("quota") or {}), admitted=gate.requests)
        if reply.get("stop_reason") not in ("end_turn", None):
            warnings.append(f"the CLI stopped the prompt early: {reply['stop_reason']}")
        return WarmCliAnswer(
            response=str(reply["response"]), gate=gate, duration_s=float(reply["duration_s"]),
            permit_wait_s=float(reply["permit_wait_s"]), warnings=warnings,
        )


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def warm_cli_client(
    config: GeminiConfig, *, cli: str, cli_env: dict[str, str], upstreams: dict[str, str], secrets: list[str]
) -> WarmCliClient:
    # Paths resolved here: the service runs from another folder, and its key must not depend on
    # how a step spelled them.
    resolved = config.model_copy(
        update={
            "workdir_root": str(Path(config.workdir_root).resolve()),
            "rate_limit_db": str(Path(config.rate_limit_db).resolve()),
            "process_permits_dir": str(config.permits_dir.resolve()),
        }
    )
    return WarmCliClient(ServiceStart(resolved, cli, cli_env, upstreams, secrets))
