"""The warm CLI service: a small local service that serves prompts from running CLIs in ACP mode.

Steps are separate processes (and under Celery, on several machines), so the warm CLIs cannot
live in a step: the service is a process of its own per machine and per process configuration
(``endpoint``), started on demand by the first step that needs it (``client``), listening on a
Unix socket beside the rate-limit bucket. A file lock held for its whole life makes it the only
one of its key.

Per prompt it takes a warm CLI with room (or starts one while a process permit is free), opens
a fresh session in a fresh folder holding the row's settings, sends the prompt and answers with
the text, the ledger of its gates, and the same failure kinds as a one-shot call. With API-key
auth one CLI serves up to ``max_gemini_processes`` sessions at once, each behind a rate gate of
its own (``lent_gates``): 0.61.0 runs sessions of one process concurrently, and one CLI (~200
MB) in place of four keeps the day's memory down. With a Google login a CLI serves one prompt at
a time (``auth.shared_auth_method`` says why). Either way at most ``max_gemini_processes``
prompts are in flight per service, as when each prompt had a CLI process of its own.

A prompt past its timeout is cancelled (``session/cancel``); a CLI that does not acknowledge is
drained: it takes no new session and ends once its other prompts have, so only the late prompt
fails. A CLI that dies is replaced while the service is in use; one that opened
``MAX_PROMPTS_PER_CLI`` sessions is drained the same way (0.61.0 keeps every session of a
process in memory and has no ``session/close``). Idle CLIs end after ``warm_cli_idle_s``, the
service after as long without work, and at once when every owner it served is gone.

    python -m nh_assets.gemini.warm_cli.service   # reads its configuration as JSON on stdin
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from nh_assets.gemini.cli_home import write_cli_home
from nh_assets.gemini.failures import GOOGLE_LOGIN_NEEDED, FailureKind, GeminiFailure, classify_exit, classify_timeout
from nh_assets.gemini.lent_gates import LentGates
from nh_assets.gemini.process_permits import ProcessPermits
from nh_assets.gemini.rate_gate import GateLedger, permit_taker, summed
from nh_assets.gemini.rate_limit import SharedRateLimit
from nh_assets.gemini.rate_limit_stores import RateLimitStoreError, store_for
from nh_assets.gemini.service_memory import open_guard
from nh_assets.gemini.warm_cli import endpoint, listener
from nh_assets.gemini.warm_cli.auth import session_auth, shared_auth_method
from nh_assets.gemini.warm_cli.client import ServiceStart, WarmCliUnavailable
from nh_assets.gemini.warm_cli.connection import AcpError, CliExited, LoginRequired, PromptTimedOut
from nh_assets.gemini.warm_cli.warm_process import WarmProcess
from nh_assets.redaction import Redactor

BROKEN_FOR_S = 60.0
MAX_PROMPTS_PER_CLI = 50
CLI_INIT_TIMEOUT_S = 30.0


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} warm-cli[{os.getpid()}] {message}\n")
    sys.stderr.flush()


def _ledger(warm: WarmProcess) -> GateLedger:
    return summed(gate.ledger() for gate in warm.gates.values())


class WarmCliService:
    def __init__(self, start: ServiceStart):
        self.start = start
        config = self.config = start.gemini
        self.key = start.key
        self.directory = config.warm_cli_dir
        self._cond = threading.Condition()
        self._procs: list[WarmProcess] = []  # draining ones included: they still hold their permits
        self._starting: list[str] = []  # approval modes of CLIs being started
        self._starting_for_prompts = 0  # of which started for a prompt that waits for it
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._owners: set[tuple[int, int]] = set()
        # After a CLI fails to start, the service declines at once for a while instead of making every
        # prompt wait for the same failure: the steps call one-shot meanwhile.
        self._broken: tuple[float, str] | None = None
        self.stopping = threading.Event()
        self._permits = ProcessPermits(config.permits_dir, config.max_gemini_processes)
        # The step's secret values, as the step found them, and every URL password by shape.
        self.redact = Redactor(start.secrets)
        Path(config.workdir_root).mkdir(parents=True, exist_ok=True)
        # The CLIs' own folder and home live beside the socket, not among the per-call folders.
        self._cwd = tempfile.mkdtemp(prefix=f"{self.key}-", dir=self.directory)
        env = {k: v for k, v in start.cli_env.items() if k != "GEMINI_MODEL"}  # the row's model must win
        if config.gemini_api_url:
            home = str(write_cli_home(Path(self._cwd) / "home"))
            env.update(HOME=home, GEMINI_CLI_HOME=home)
        self._env = env
        self._auth = session_auth(env)
        store = store_for(
            config.rate_limit_backend, sqlite_path=Path(config.rate_limit_db), postgres_url=config.rate_limit_bucket_url
        )
        self._limiter = SharedRateLimit(store, config.rate_per_minute, config.rate_per_day)
        self._take_permit = permit_taker(self._limiter, _log)
        # Spent quotas, refused credentials and per-model quotas, shared with every step.
        self._guard = open_guard(
            backend=config.rate_limit_backend, rate_limit_db=config.rate_limit_db,
            postgres_url=config.rate_limit_bucket_url, model_quotas=config.model_quotas, env=env, log=_log,
        )
        # Sessions share a CLI only where each can be given a gate of its own.
        self._gateway_method = shared_auth_method(env)
        api = start.upstreams.get("GOOGLE_GEMINI_BASE_URL")
        self._session_gates = (
            LentGates(api, self._take_permit, self._guard) if self._gateway_method and api else None
        )
        self._sessions_per_cli = config.max_gemini_processes if self._session_gates else 1

    # -- helpers ----------------------------------------------------------------------------------

    def _start(self, approval_mode: str, permit) -> WarmProcess:
        started = time.monotonic()
        try:
            warm = WarmProcess.start(
                cli=self.start.cli, approval_mode=approval_mode, skip_trust=self.config.skip_trust, env=self._env,
                cwd=self._cwd, upstreams=self.start.upstreams, take_permit=self._take_permit, permit=permit, guard=self._guard,
                sessions=self._sessions_per_cli, init_timeout_s=CLI_INIT_TIMEOUT_S, redact=self.redact,
            )
        except BaseException:
            ProcessPermits.release(permit)
            raise
        _log(f"started CLI pid {warm.cli.pid} ({approval_mode}) in {time.monotonic() - started:.1f}s")
        return warm

    # -- checkout and return ------------------------------------------------------------------------

    def _take(self, warm: WarmProcess) -> None:
        """Count a new session on ``warm`` (under the lock); one that reaches its share starts draining."""
        warm.in_flight += 1
        warm.prompts += 1
        if warm.prompts >= MAX_PROMPTS_PER_CLI:
            warm.draining = True
            _log(f"draining CLI pid {warm.cli.pid}: opened its share of sessions")

    def checkout(self, approval_mode: str, abandoned: threading.Event) -> tuple[WarmProcess, float]:
        """A warm CLI with room for one more session of this approval mode, started if a process permit
        is free; waits while ``max_gemini_processes`` prompts are in flight or no CLI has room."""
        waited_from = time.monotonic()
        announced = False
        limit = self.config.max_gemini_processes
        while True:
            permit = None
            with self._cond:
                if self._broken is not None and time.monotonic() < self._broken[0]:
                    raise WarmCliUnavailable(self._broken[1])
                in_flight = sum(w.in_flight for w in self._procs) + self._starting_for_prompts
                roomy = [w for w in self._procs if w.has_room(approval_mode)]
                if roomy and in_flight < limit:
                    warm = max(roomy, key=lambda w: w.in_flight)  # fill one CLI before the next
                    self._take(warm)
                    return warm, time.monotonic() - waited_from
                # A CLI of this mode on its way serves this prompt too, when sessions share CLIs.
                coming = self._sessions_per_cli > 1 and approval_mode in self._starting
                may_start = in_flight < limit and not coming
                if may_start and len(self._procs) + len(self._starting) < limit:
                    permit = self._permits.try_acquire()
                if permit is None:
                    # An idle CLI of another approval mode holds a permit this prompt could use.
                    spare = next((w for w in self._procs if not w.busy and w.approval_mode != approval_mode), None)
                    if spare is not None and may_start:
                        self._procs.remove(spare)
                        threading.Thread(target=spare.stop, daemon=True).start()
                    if abandoned.is_set() or self.stopping.is_set():
                        raise WarmCliUnavailable("the step went away while waiting for a warm CLI")
                    if not announced:
                        _log(f"{in_flight} of {limit} prompts in flight, {len(self._procs)} CLIs: waiting")
                        announced = True
                    self._cond.wait(0.2)
                    continue
                self._starting.append(approval_mode)
                self._starting_for_prompts += 1
            try:
                warm = self._start(approval_mode, permit)
            except LoginRequired:
                # The one-shot CLI would fail the same way (exit 41): this is the step's answer.
                raise GeminiFailure(FailureKind.AUTH, f"the warm CLI asked for a new login: {GOOGLE_LOGIN_NEEDED}") from None
            except (CliExited, AcpError, TimeoutError, OSError) as exc:
                reason = f"a warm CLI did not start: {self.redact(str(exc))}"
                with self._cond:
                    self._broken = (time.monotonic() + BROKEN_FOR_S, reason)
                raise WarmCliUnavailable(reason) from None
            finally:
                with self._cond:
                    self._starting.remove(approval_mode)
                    self._starting_for_prompts -= 1
                    self._cond.notify_all()
            with self._cond:
                self._broken = None
                self._take(warm)
                self._procs.append(warm)
                self._cond.notify_all()
            return warm, time.monotonic() - waited_from

    def checkin(self, warm: WarmProcess, *, drain: bool = False) -> None:
        """The prompt's session is over (or abandoned, with ``drain``: the CLI then takes no new one)."""
        with self._cond:
            warm.in_flight -= 1
            warm.last_used = time.monotonic()
            if drain and not warm.draining:
                warm.draining = True
                _log(f"draining CLI pid {warm.cli.pid}: a prompt's session could not be ended")
            # A dead CLI goes at once (its other prompts have failed with it); a draining one when empty.
            retire = (not warm.alive or (warm.draining and not warm.busy)) and warm in self._procs
            if retire:
                self._procs.remove(warm)
            self._cond.notify_all()
        if retire:
            reason = "drained" if warm.alive else "unhealthy"
            _log(f"retiring CLI pid {warm.cli.pid}: {reason}")
            threading.Thread(target=warm.stop, args=(self.config.kill_grace_s,), daemon=True).start()

    # -- one prompt ---------------------------------------------------------------------------------

    def serve(self, request: dict, abandoned: threading.Event) -> dict:
        owner = tuple(request.get("owner") or ())
        with self._cond:
            if len(owner) == 2:
                self._owners.add(owner)  # type: ignore[arg-type]
            self._in_flight += 1
            self._last_activity = time.monotonic()
        try:
            return self._serve(request, abandoned)
        except WarmCliUnavailable as exc:
            return {"ok": False, "unavailable": str(exc)}
        except GeminiFailure as exc:
            return {"ok": False, "failure": {"kind": exc.kind.value, "cause": exc.cause}}
        finally:
            with self._cond:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

    def _serve(self, request: dict, abandoned: threading.Event) -> dict:
        call = request["call"]
        timeout_s = float(call["timeout_s"])
        if self._auth is None:
            raise WarmCliUnavailable("no Gemini credentials for the CLI (no auth type in its settings, no key in its environment)")
        warm, waited = self.checkout(str(call.get("approval_mode") or "default"), abandoned)
        workdir = Path(tempfile.mkdtemp(prefix="call-", dir=self.config.workdir_root))
        # The prompt's own gate when it shares the CLI; else the CLI's gates, which serve it alone.
        gate = self._session_gates.borrow() if self._session_gates else None
        gateway = (self._gateway_method, gate.url) if gate and self._gateway_method else None
        drain = ended = False

        def ledger_now() -> GateLedger:
            return gate.ledger() if gate else _ledger(warm)

        try:
            (workdir / ".gemini").mkdir()
            settings = {**request["settings"], **self._auth, "model": {"name": call["model"]}}
            (workdir / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
            if gate is None:
                for process_gate in warm.gates.values():
                    process_gate.begin()
            cpu_before = warm.cpu_seconds()
            started = time.monotonic()
            deadline = started + timeout_s
            try:
                session = warm.open_session(str(workdir), timeout_s, gateway)
            except (AcpError, CliExited, TimeoutError) as exc:
                drain = isinstance(exc, TimeoutError)
                raise WarmCliUnavailable(f"session/new failed: {self.redact(str(exc))}") from None
            try:
                outcome = warm.cli.prompt(
                    session, request["prompt"], deadline=deadline, grace_s=self.config.kill_grace_s, abandoned=abandoned
                )
            except PromptTimedOut as exc:
                # Unacknowledged, the session may run on: no new session on this CLI, which ends once
                # its other prompts have (a CLI of its own ends at once).
                drain = not exc.cancelled
                raise GeminiFailure(*self._timeout(timeout_s, warm)) from None
            except CliExited as exc:
                ledger = ledger_now()
                if ledger.refusal is not None:
                    raise GeminiFailure(ledger.refusal.kind, str(ledger.refusal)) from None
                raise GeminiFailure(
                    FailureKind.OTHER, f"the warm CLI (pid {warm.cli.pid}) ended mid-prompt: {exc}; the service starts another"
                ) from None
            except AcpError as exc:
                raise GeminiFailure(*self._classify(exc, ledger_now())) from None
            duration = time.monotonic() - started
            # With sessions sharing the CLI this is the CLI's CPU meanwhile, theirs included.
            cpu = warm.cpu_seconds() - cpu_before
            _log(f"prompt on CLI pid {warm.cli.pid}: {duration:.2f}s, {cpu:.2f}s CPU")
            ledger = ledger_now()
            if outcome.stop_reason == "cancelled":
                raise GeminiFailure(FailureKind.TIMEOUT, "the CLI cancelled the prompt")
            ended = True
            return {
                "ok": True,
                "response": outcome.text,
                "stop_reason": outcome.stop_reason,
                "quota": outcome.quota,
                "gate": {
                    "requests": dict(ledger.requests), "waited_s": ledger.waited_s,
                    "usage": {model: entry.as_dict() for model, entry in ledger.usage.items()},
                    "grounding": ledger.grounding.to_json(),
                    "answered_by": ledger.answered_by,
                    "finish_reasons": dict(ledger.seen.finish_reasons),
                },
                "duration_s": duration,
                "permit_wait_s": waited,
                "cli_pid": warm.cli.pid,
            }
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if gate is not None and self._session_gates is not None:
                # Reused only after a turn that ended: no request of its session can still arrive.
                self._session_gates.give_back(gate, reusable=ended)
            self.checkin(warm, drain=drain)

    def _timeout(self, timeout_s: float, warm: WarmProcess) -> tuple[FailureKind, str]:
        failure = classify_timeout(timeout_s, warm.cli.stderr_tail())
        cause = failure.cause.replace("the process group was killed", "the prompt was cancelled")
        return failure.kind, cause

    def _classify(self, error: AcpError, ledger: GateLedger) -> tuple[FailureKind, str]:
        if ledger.refusal is not None:
            return ledger.refusal.kind, str(ledger.refusal)
        message = self.redact(error.message)
        if error.code == 429:
            return FailureKind.RATE_LIMIT, f"ACP error 429: {message}"
        failure = classify_exit(1, "", message)
        return failure.kind, f"ACP error {error.code}: {message.splitlines()[0] if message else 'no message'}"

    # -- housekeeping -------------------------------------------------------------------------------

    def housekeep(self) -> bool:
        """Reap dead CLIs (replacing them while in use), retire idle ones; False when the service should end."""
        now = time.monotonic()
        replace: list[str] = []
        with self._cond:
            for warm in list(self._procs):
                if not warm.alive and not warm.busy:
                    self._procs.remove(warm)
                    _log(f"CLI pid {warm.cli.pid} died: {warm.cli.describe_exit()}")
                    threading.Thread(target=warm.stop, args=(0.0,), daemon=True).start()
                    if now - self._last_activity < self.config.warm_cli_idle_s:
                        replace.append(warm.approval_mode)
                elif not warm.busy and now - warm.last_used > self.config.warm_cli_idle_s:
                    self._procs.remove(warm)
                    _log(f"retiring idle CLI pid {warm.cli.pid}")
                    threading.Thread(target=warm.stop, daemon=True).start()
            self._cond.notify_all()
            idle = self._in_flight == 0 and not self._procs and now - self._last_activity > self.config.warm_cli_idle_s
            owners_gone = bool(self._owners) and not any(endpoint.alive(o) for o in self._owners)
        for mode in replace:
            threading.Thread(target=self._replace, args=(mode,), daemon=True).start()
        if owners_gone:
            _log("every owner it served is gone: stopping")
        elif idle:
            _log(f"idle for {self.config.warm_cli_idle_s:.0f}s: stopping")
        return not (owners_gone or idle)

    def _replace(self, approval_mode: str) -> None:
        with self._cond:
            if len(self._procs) + len(self._starting) >= self.config.max_gemini_processes:
                return
            if self._sessions_per_cli > 1 and (
                approval_mode in self._starting or any(w.has_room(approval_mode) for w in self._procs)
            ):
                return  # a CLI with room for sessions already serves this mode
            permit = self._permits.try_acquire()
            if permit is None:
                return
            self._starting.append(approval_mode)
        try:
            warm = self._start(approval_mode, permit)
        except (CliExited, AcpError, TimeoutError, OSError) as exc:
            _log(f"replacement CLI did not start: {self.redact(str(exc))}")
            return
        finally:
            with self._cond:
                self._starting.remove(approval_mode)
        with self._cond:
            self._procs.append(warm)
            self._cond.notify_all()

    def cli_pids(self) -> list[int]:
        return [w.cli.pid for w in list(self._procs)]

    def close(self) -> None:
        self.stopping.set()
        with self._cond:
            procs, self._procs = self._procs, []
        for warm in procs:
            warm.stop(self.config.kill_grace_s)
        if self._session_gates is not None:
            self._session_gates.close()
        self._limiter.close()
        shutil.rmtree(self._cwd, ignore_errors=True)


def main() -> int:
    start = ServiceStart.from_json(sys.stdin.read())
    sys.stdin.close()
    directory, key = start.gemini.warm_cli_dir, start.key
    with endpoint.file_lock(directory / f"{key}.lock", blocking=False) as mine:
        if not mine:
            return 0  # another service of this key serves the machine
        try:
            service = WarmCliService(start)
        except (RateLimitStoreError, ValueError, OSError) as exc:
            _log(f"cannot start: {exc}")
            return 1
        server = listener.UnixServer(endpoint.bind(directory / f"{key}.sock"), listener.handler_for(service, _log))
        threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
        _log(f"serving {start.cli} for key {key}, up to {start.gemini.max_gemini_processes} CLIs")
        try:
            while service.housekeep():
                time.sleep(0.5)
        finally:
            (directory / f"{key}.sock").unlink(missing_ok=True)
            server.shutdown()
            service.close()
            server.server_close()
            own, clis = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            _log(f"stopped; CPU: service {own.ru_utime + own.ru_stime:.2f}s, its CLIs {clis.ru_utime + clis.ru_stime:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
