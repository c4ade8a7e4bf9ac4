"""The Gemini CLI as a Dagster resource: one rate-limited, time-boxed, classified call.

Every prompt asset calls ``GeminiCLIResource.generate`` with the prompt and a ``ModelCall`` (the
row's model, tools, temperature, thinking budget, approval mode, timeout); the resource holds the
one ``GeminiConfig``. With the ``acp`` transport (the default) a warm CLI serves the prompt
(``warm_cli``), and a one-shot call serves it when the warm CLI service cannot. A one-shot call
runs the ``gemini`` executable headless (``-o json -p PROMPT``) with stdin closed, in a fresh
working directory whose ``.gemini/settings.json`` says what the row says (``call``), with the
NeuroHelix system prompt instead of the CLI's coding-agent one (``GEMINI_SYSTEM_MD``), while
holding one of the machine-wide process permits (``process_permits``). Either way the CLI reaches
the API only through the rate gate (``rate_gate``), which takes a rate permit from the shared
bucket for every request, tool loops and retries included, and reads what each cost. A call
that outlives its timeout has its whole process group killed (``subprocesses``); it gets an
allow-listed environment (``child_env``). Failures come back as ``GeminiFailure`` with a kind,
a one-line cause and a fix; the asset decides whether to retry. What the service said that holds beyond one call
(a spent daily quota, refused credentials) is in a shared memory (``service_memory``): a call it
rules out fails before any CLI starts, or, for a spent quota, goes to the row's fallback model.

With ``gemini_api_url`` set (``NH_GEMINI_API_URL``) the gate forwards to that endpoint instead of
Google, and the CLI gets a home of our own (``cli_home``). Demo mode is only that: the project's
fake API runs as its own process (``python -m nh_assets.demo``, started by ``scripts/dev.sh
--demo``), and ``demo`` labels everything produced as fake. This module knows nothing of the fake.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from nh_assets import subprocesses
from nh_assets.child_env import GEMINI_CLI, child_env
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.cli_home import write_cli_home
from nh_assets.gemini.answer_check import judge_answer_end
from nh_assets.gemini.config import GeminiConfig
from nh_assets.gemini.failures import FailureKind, GeminiFailure, classify_exit, classify_timeout
from nh_assets.gemini.lent_gates import LentGates
from nh_assets.gemini.process_permits import ProcessPermits
from nh_assets.gemini.rate_gate import CODE_ASSIST_URL, GEMINI_API_URL, GateLedger, RateGate, permit_taker, summed
from nh_assets.gemini.rate_limit import DailyCapExceeded, RateLimitConfigError, SharedRateLimit
from nh_assets.gemini.rate_limit_stores import RateLimitStoreError, store_for
from nh_assets.gemini.service_memory import MemoryGuard, open_guard
from nh_assets.gemini.usage import ModelUsage, mismatches, total, usage_by_model, usage_metadata
from nh_assets.gemini.warm_cli.client import WarmCliUnavailable, warm_cli_client
from nh_assets.redaction import redact, secret_values

# The demo endpoint checks no key, but the CLI insists on one; never a real key sent to a fake.
_DEMO_API_KEY = "nh-demo-key-not-a-secret"


@dataclass(frozen=True)
class GeminiResult:
    response: str
    model: str
    gate: GateLedger
    duration_s: float
    demo: bool
    process_permit_wait_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    transport: str = "oneshot"
    answered_by: str = ""  # the model of the request whose answer ended the call
    fallback_from: str = ""  # the row's model, when its spent quota sent the call to the fallback
    fallback_reason: str = ""

    @property
    def usage(self) -> dict[str, ModelUsage]:
        return self.gate.usage

    @property
    def input_tokens(self) -> int:
        return total(self.usage).input_tokens

    @property
    def output_tokens(self) -> int:
        return total(self.usage).output_tokens

    @property
    def total_tokens(self) -> int:
        return total(self.usage).total_tokens

    def metadata(self) -> dict[str, dg.MetadataValue]:
        return {
            "gemini.model": dg.MetadataValue.text(self.model),
            **usage_metadata(self.usage, gate_requests=self.gate.requests),
            "gemini.duration_s": dg.MetadataValue.float(round(self.duration_s, 3)),
            "gemini.rate_limit_wait_s": dg.MetadataValue.float(round(self.gate.waited_s, 3)),
            # The key keeps its first name: materializations recorded under it stay comparable.
            "gemini.process_slot_wait_s": dg.MetadataValue.float(round(self.process_permit_wait_s, 3)),
            "gemini.demo": dg.MetadataValue.bool(self.demo),
            "gemini.transport": dg.MetadataValue.text(self.transport),
            "gemini.answered_by": dg.MetadataValue.text(self.answered_by or self.model),
            **({"gemini.fallback_from": dg.MetadataValue.text(self.fallback_from),
                "gemini.fallback_reason": dg.MetadataValue.text(self.fallback_reason)} if self.fallback_from else {}),
        }


def combined(results: list[GeminiResult]) -> GeminiResult:
    """Several calls of one step (an answer and its re-asks) as one: what the step cost."""
    last = results[-1]
    return GeminiResult(
        response=last.response,
        model=last.model,
        gate=summed(r.gate for r in results),
        duration_s=sum(r.duration_s for r in results),
        demo=last.demo,
        process_permit_wait_s=sum(r.process_permit_wait_s for r in results),
        warnings=[w for r in results for w in r.warnings],
        # The transport that served the calls: "acp" or "oneshot", or both named when they differed.
        transport="+".join(sorted({r.transport for r in results})),
        answered_by=last.answered_by,
        fallback_from=next((r.fallback_from for r in results if r.fallback_from), ""),
        fallback_reason=next((r.fallback_reason for r in results if r.fallback_reason), ""),
    )


def _parse_cli_json(stdout: str) -> dict:
    start, end = stdout.find("{"), stdout.rfind("}")
    if start == -1 or end <= start:
        raise GeminiFailure(FailureKind.BAD_OUTPUT, "the CLI printed no JSON object on stdout")
    try:
        doc = json.loads(stdout[start : end + 1])
    except ValueError as exc:
        raise GeminiFailure(FailureKind.BAD_OUTPUT, f"the CLI's JSON output does not parse ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("response"), str):
        raise GeminiFailure(FailureKind.BAD_OUTPUT, "the CLI's JSON output has no 'response' text")
    return doc


class GeminiCLIResource(dg.ConfigurableResource):
    """Runs prompts through the Gemini CLI under the shared rate limit."""

    config: GeminiConfig = Field(description="The one Gemini configuration, built from the operator's settings.")

    _limiter: SharedRateLimit | None = PrivateAttr(default=None)
    _process_permits: ProcessPermits | None = PrivateAttr(default=None)
    _cli_home: Path | None = PrivateAttr(default=None)
    # Steps may run in threads of one process (``step_threads``) sharing this resource: each call
    # borrows gates of its own (``lent_gates``); the bucket and the memory are shared.
    _gates: dict[str, LentGates] = PrivateAttr(default_factory=dict)
    _guard: MemoryGuard | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        config = self.config
        self._process_permits = ProcessPermits(config.permits_dir, config.max_gemini_processes)
        if config.gemini_api_url:
            Path(config.workdir_root).mkdir(parents=True, exist_ok=True)
            self._cli_home = write_cli_home(Path(tempfile.mkdtemp(prefix="cli-home-", dir=config.workdir_root)))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for gates in self._gates.values():
            gates.close()
        self._gates = {}
        if self._cli_home is not None:
            shutil.rmtree(self._cli_home, ignore_errors=True)
            self._cli_home = None
        if self._limiter is not None:
            self._limiter.close()
            self._limiter = None
        if self._guard is not None:
            self._guard.close()
            self._guard = None

    def _shared_rate_limit(self) -> SharedRateLimit:
        """Opened on first use, inside the step, so an unreachable store fails the step with a
        classified one-line error rather than a resource-initialisation traceback."""
        with self._lock:
            return self._shared_rate_limit_locked()

    def _shared_rate_limit_locked(self) -> SharedRateLimit:
        if self._limiter is None:
            try:
                config = self.config
                store = store_for(
                    config.rate_limit_backend,
                    sqlite_path=Path(config.rate_limit_db),
                    postgres_url=config.rate_limit_bucket_url,
                )
                self._limiter = SharedRateLimit(store, config.rate_per_minute, config.rate_per_day)
            except (RateLimitStoreError, RateLimitConfigError) as exc:
                raise GeminiFailure(FailureKind.RATE_LIMIT_STORE, str(exc)) from None
        return self._limiter

    def _memory_guard(self, env: dict[str, str], log) -> MemoryGuard:
        """The shared memory of spent quotas and refused credentials, beside the rate-limit bucket."""
        with self._lock:
            if self._guard is None:
                config = self.config
                try:
                    self._guard = open_guard(
                        backend=config.rate_limit_backend, rate_limit_db=config.rate_limit_db,
                        postgres_url=config.rate_limit_bucket_url, model_quotas=config.model_quotas, env=env, log=log,
                    )
                except RateLimitStoreError as exc:
                    raise GeminiFailure(FailureKind.RATE_LIMIT_STORE, str(exc)) from None
            return self._guard

    def _upstreams(self) -> dict[str, str]:
        """The endpoints the CLI may use, by the variable that names each: the Gemini API (API-key
        auth, or the configured endpoint) and, without a configured endpoint, Code Assist (a Google login)."""
        # An endpoint the operator set for the CLI (a proxy, say) stays the upstream.
        upstreams = {"GOOGLE_GEMINI_BASE_URL": self.config.gemini_api_url or os.environ.get("GOOGLE_GEMINI_BASE_URL") or GEMINI_API_URL}
        if not self.config.gemini_api_url:
            upstreams["CODE_ASSIST_ENDPOINT"] = os.environ.get("CODE_ASSIST_ENDPOINT") or CODE_ASSIST_URL
        return upstreams

    @contextlib.contextmanager
    def _gates_for_call(self, log) -> Iterator[dict[str, RateGate]]:
        """A gate of its own in front of each upstream, for one one-shot call: its ledgers are that
        call's. The CLI's whole group is gone when the call returns, so the gates are lent again."""
        with self._lock:
            if not self._gates:
                take_permit = permit_taker(self._shared_rate_limit_locked(), log)
                self._gates = {name: LentGates(url, take_permit, self._guard) for name, url in self._upstreams().items()}
            lenders = dict(self._gates)
        gates = {name: lender.borrow(log) for name, lender in lenders.items()}
        try:
            yield gates
        finally:
            for name, gate in gates.items():
                lenders[name].give_back(gate, reusable=True)

    def _child_env(self, gates: dict[str, RateGate] | None = None) -> dict[str, str]:
        config = self.config
        # Without it the CLI re-execs a second node process, which doubles its start-up.
        overrides = {"GEMINI_CLI_NO_RELAUNCH": "true"} if config.no_relaunch else {}
        # The per-call folder is ours and holds the call's settings (``call``): trust it.
        overrides["GEMINI_CLI_TRUST_WORKSPACE"] = "true"
        # Nobody is there to finish a browser login: an expired one fails at once (exit 41).
        overrides["NO_BROWSER"] = "true"
        if config.system_prompt:
            overrides["GEMINI_SYSTEM_MD"] = str(Path(config.system_prompt).resolve())
        if config.gemini_api_url:
            assert self._cli_home is not None, "resource used outside Dagster execution"
            overrides.update(HOME=str(self._cli_home), GEMINI_CLI_HOME=str(self._cli_home))
            if config.demo:
                overrides["GEMINI_API_KEY"] = _DEMO_API_KEY
        # The CLI reaches the API only through the rate gates.
        overrides.update({name: gate.url for name, gate in (gates or {}).items()})
        # The gates are on loopback: keep the operator's proxy exceptions and add loopback to them.
        for name in ("NO_PROXY", "no_proxy"):
            overrides[name] = ",".join(filter(None, [os.environ.get(name, ""), "127.0.0.1,localhost"]))
        return child_env(GEMINI_CLI, **overrides)

    def link_env(self) -> dict[str, str]:
        """The environment a search's links are followed in: the CLI's own proxy settings."""
        return child_env(GEMINI_CLI)

    def resolve_cli(self) -> str:
        found = shutil.which(self.config.gemini_cli)
        if found is None:
            raise GeminiFailure(
                FailureKind.CLI_MISSING, f"Gemini CLI {self.config.gemini_cli!r} not found or not executable"
            )
        return found

    def command(self, *, cli: str, model: str, prompt: str, approval_mode: str) -> list[str]:
        args = [cli, "-m", model, "-o", "json", "--approval-mode", approval_mode]
        if self.config.skip_trust:
            args.append("--skip-trust")
        return [*args, "-p", prompt]

    def backoff_seconds(self, failure: GeminiFailure, retry_number: int) -> float:
        """Exponential backoff with full jitter on top; 429s start from a much longer base."""
        if failure.retry_after_s is not None:  # the API said how long: wait that, plus a little jitter
            return round(failure.retry_after_s + random.uniform(0, 2), 2)
        base = self.config.rate_limit_backoff_s if failure.kind is FailureKind.RATE_LIMIT else self.config.retry_base_s
        delay = base * (2**retry_number)
        return round(delay + random.uniform(0, delay / 2), 2)

    def generate(
        self, context: dg.AssetExecutionContext | dg.OpExecutionContext, *, prompt: str, call: ModelCall
    ) -> GeminiResult:
        """One attempt on the row's model, or on its fallback when the model's daily quota is spent."""
        try:
            return self._generate(context, prompt=prompt, call=call)
        except GeminiFailure as failure:
            if failure.kind is not FailureKind.QUOTA_SPENT or not call.fallback_model:
                raise
            context.log.warning(f"{failure.cause}; asking the row's fallback model {call.fallback_model}")
            result = self._generate(context, prompt=prompt, call=replace(call, model=call.fallback_model, fallback_model=None))
            return replace(result, fallback_from=call.model, fallback_reason=failure.cause)

    def _generate(
        self, context: dg.AssetExecutionContext | dg.OpExecutionContext, *, prompt: str, call: ModelCall
    ) -> GeminiResult:
        """One attempt, on a warm CLI or one-shot, behind the rate gate; raises GeminiFailure."""
        if call.approval_mode == "yolo":
            context.log.warning("approval mode yolo: the registry row asked for it in its tools column")
        cli = self.resolve_cli()
        assert self._process_permits is not None, "resource used outside Dagster execution"
        # The bucket first: a store that cannot be reached is named there, with its address redacted.
        try:
            self._shared_rate_limit().check_day_left()
        except DailyCapExceeded as exc:
            raise GeminiFailure(FailureKind.DAILY_CAP, str(exc)) from None
        except RateLimitStoreError as exc:  # the store stayed locked or unreachable past its patience
            raise GeminiFailure(FailureKind.RATE_LIMIT_STORE, str(exc)) from None
        guard = self._memory_guard(self._child_env(), context.log.warning)
        guard.fail_if_refused(call.model)
        if self.config.gemini_transport == "acp":
            # The warm CLI service has gates of its own: the step opens none.
            env, upstreams = self._child_env(), self._upstreams()
            try:
                # The service redacts its log and causes with the secrets of the environment it runs.
                client = warm_cli_client(
                    self.config, cli=cli, cli_env=env, upstreams=upstreams, secrets=sorted(secret_values(env))
                )
                answer = client.generate(prompt=prompt, call=call)
            except WarmCliUnavailable as exc:
                context.log.warning(f"Gemini transport oneshot: the warm CLI could not take this prompt ({exc})")
            except GeminiFailure as failure:
                guard.fail_if_refused(call.model, auth=False)  # the warm CLI's gate remembered a spent quota
                raise guard.learn(failure, []) from None
            else:
                judge_answer_end({}, answer.gate.seen)  # an answer the API withheld or cut short fails here too
                for warning in answer.warnings:
                    context.log.warning(f"warm CLI: {warning}")
                return GeminiResult(
                    response=answer.response, model=call.model, gate=answer.gate, duration_s=answer.duration_s,
                    demo=self.config.demo, process_permit_wait_s=answer.permit_wait_s, warnings=answer.warnings,
                    transport="acp", answered_by=answer.gate.answered_by or call.model,
                )
        Path(self.config.workdir_root).mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="call-", dir=self.config.workdir_root))
        try:
            call.write_settings(workdir)
            # The process permit first: the rate permits are taken by the gate at each request,
            # once the CLI has started, so none is spent while waiting for a process permit.
            with self._process_permits.hold(context.log.info) as permit, self._gates_for_call(context.log.info) as gates:
                env = self._child_env(gates)
                started = time.monotonic()
                stdout, stderr, returncode = self._run(
                    self.command(cli=cli, model=call.model, prompt=prompt, approval_mode=call.approval_mode),
                    env=env,
                    cwd=str(workdir),
                    timeout_s=call.timeout_s,
                    # The CLI holds the permit too: if this step process dies, the permit stays
                    # taken until the orphaned CLI exits.
                    pass_fds=(permit.fd,),
                )
                duration = time.monotonic() - started
                ledger = summed(gate.ledger() for gate in gates.values())
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if ledger.refusal is not None:
            raise GeminiFailure(ledger.refusal.kind, str(ledger.refusal))
        # A per-day 429 ends the call whatever the CLI made of it; the guard has remembered it.
        guard.fail_if_refused(call.model, auth=False)
        if returncode != 0:
            failure = classify_exit(returncode, stdout, stderr)
            if stderr.strip():
                context.log.debug(f"gemini stderr (redacted): {stderr[-2000:]}")
            raise guard.learn(failure, ledger.quota)
        doc = _parse_cli_json(stdout)
        warnings = mismatches(ledger.usage, usage_by_model(doc.get("stats") or {}), admitted=ledger.requests)
        for warning in warnings:
            context.log.warning(f"usage mismatch: {warning}")
        for warning in judge_answer_end(doc, ledger.seen):
            context.log.warning(f"the CLI warned: {warning}")
            warnings.append(warning)
        return GeminiResult(
            response=doc["response"],
            model=call.model,
            gate=ledger,
            duration_s=duration,
            demo=self.config.demo,
            process_permit_wait_s=permit.waited_s,
            warnings=warnings,
            answered_by=ledger.answered_by or call.model,
        )

    def _run(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        timeout_s: float,
        pass_fds: tuple[int, ...] = (),
    ) -> tuple[str, str, int]:
        """(stdout, redacted stderr, exit code). stdout holds the model's answer, which is data and is
        never rewritten; its text reaches a log or a failure only through ``classify_exit`` and
        ``GeminiFailure``, which redact."""
        try:
            done = subprocesses.run(
                args, env=env, cwd=cwd, timeout_s=timeout_s, kill_grace_s=self.config.kill_grace_s, pass_fds=pass_fds
            )
        except FileNotFoundError:
            raise GeminiFailure(FailureKind.CLI_MISSING, f"cannot execute {args[0]!r}") from None
        except PermissionError:
            raise GeminiFailure(FailureKind.CLI_MISSING, f"{args[0]!r} is not executable") from None
        except OSError as exc:
            # E2BIG and friends: report the OS reason, never the argument vector (it holds the prompt).
            raise GeminiFailure(FailureKind.CONFIG, f"cannot start the CLI: {exc.strerror}") from None
        stderr = redact(done.stderr)
        if done.timed_out:
            raise classify_timeout(timeout_s, stderr)
        return done.stdout, stderr, done.returncode
