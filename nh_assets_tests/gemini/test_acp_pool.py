"""The warm CLI service with the REAL Gemini CLI in ACP mode against the project's fake Gemini API.

Each test gets its own warm CLI service (the service is keyed by the bucket's folder, here under ``tmp_path``),
which ends with the test process or after its idle time. The whole day through the service is
``test_real_cli_pipeline.test_full_day_through_the_real_cli``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.gemini.warm_cli import service as service_module
from nh_assets.gemini.warm_cli.auth import shared_auth_method
from nh_assets.gemini.warm_cli.client import ServiceStart
from nh_assets.gemini.warm_cli.service import WarmCliService
from nh_assets.process_stat import process_stat
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.fakes import gemini_config
from nh_assets_tests.support.gemini_api_fixtures import gemini_env

pytestmark = pytest.mark.real_cli

SYSTEM_PROMPT = REPO_ROOT / "registry" / "system_prompt.md"


def _prompt(prompt_id: str) -> str:
    return f"NEUROHELIX PROMPT: {prompt_id}\nDATE: 2026-11-20\nRESPONSE FORMAT: markdown\n\nSummarise."


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with FakeGeminiAPI(log_path=tmp_path / "api.jsonl") as server:
        yield server


def _resource(tmp_path: Path, cli: str, api: FakeGeminiAPI, **overrides) -> GeminiCLIResource:
    """The default transport, acp (the settings' default: this test names none)."""
    fields = dict(
        gemini_cli=cli, rate_limit_db=str(tmp_path / "rate.sqlite"), workdir_root=str(tmp_path / "workdirs"),
        gemini_api_url=api.base_url, system_prompt=str(SYSTEM_PROMPT), kill_grace_s=2.0, warm_cli_idle_s=60.0,
    )
    return GeminiCLIResource(config=gemini_config(tmp_path, **{**fields, **overrides}))


def _generate(resource: GeminiCLIResource, prompt_id: str = "ai_ecosystem_watch", **call):
    call = ModelCall(**{"model": "gemini-2.5-flash", "timeout_s": 60, **call})
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        return resources.gemini.generate(context, prompt=_prompt(prompt_id), call=call)


def _warm_cli_processes(tmp_path: Path) -> tuple[list[int], list[int]]:
    """(service pids, warm CLI pids) of this test's service, read from /proc."""
    service_dir = str(tmp_path / "gemini_warm_cli")
    services, parents = [], {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = process_stat(int(entry))
            if stat is None or stat.exited:
                continue
            parents[int(entry)] = (stat.parent, cmdline)
            if b"nh_assets.gemini.warm_cli.service" in cmdline and os.readlink(f"/proc/{entry}/cwd") == service_dir:
                services.append(int(entry))
        except OSError:
            continue
    clis = [pid for pid, (ppid, cmdline) in parents.items() if ppid in services and b"--acp" in cmdline]
    return services, clis


def _api_calls(api: FakeGeminiAPI, prompt_id: str) -> list[dict]:
    return [r for r in api.requests if f"NEUROHELIX PROMPT: {prompt_id}\n" in r["prompt"] or r["kind"] == "search"]


@pytest.mark.parametrize("tools", [(), ("google_web_search",)], ids=["no-tools", "search-loop"])
def test_a_warm_cli_answers_as_the_one_shot_call_does(tmp_path, gemini_cli_path, api, tools):
    call = dict(tools=tools, temperature=0.3)
    warm = _generate(_resource(tmp_path, gemini_cli_path, api), **call)
    seen = len(api.requests)
    oneshot = _generate(_resource(tmp_path, gemini_cli_path, api, gemini_transport="oneshot"), **call)
    assert (warm.transport, oneshot.transport) == ("acp", "oneshot")
    assert warm.response == oneshot.response and "# ai_ecosystem_watch" in warm.response
    assert warm.gate.requests == oneshot.gate.requests
    warm_requests, oneshot_requests = api.requests[:seen], api.requests[seen:]
    # Per model, the same requests, output and thinking tokens, and the input tokens the API counted.
    assert set(warm.usage) == set(oneshot.usage)
    for model, usage in warm.usage.items():
        other = oneshot.usage[model]
        assert (usage.requests, usage.output_tokens, usage.thinking_tokens) == (other.requests, other.output_tokens, other.thinking_tokens)
        assert usage.input_tokens == sum(r["usage"]["promptTokenCount"] for r in warm_requests if r["model"] == model)
        assert other.input_tokens == sum(r["usage"]["promptTokenCount"] for r in oneshot_requests if r["model"] == model)
    # Each request's input differs only by the folder paths the CLI's session context names (the service's
    # CLI home is deeper than the one-shot's): a few dozen bytes, and the tokens those bytes make.
    for a, b in zip(warm_requests, oneshot_requests, strict=True):
        extra = abs(a["bytes"] - b["bytes"])
        assert extra <= 64
        assert abs(a["usage"]["promptTokenCount"] - b["usage"]["promptTokenCount"]) <= -(-extra // 4) + 1
    assert set(warm.metadata()) == set(oneshot.metadata())
    assert warm.metadata()["gemini.transport"].value == "acp" and warm.warnings == []
    # What the API was sent: the row's tools, temperature and our system prompt, on both paths.
    for key in ("tools", "temperature", "system_chars", "kind"):
        assert [r[key] for r in warm_requests] == [r[key] for r in oneshot_requests], key
    assert {r["temperature"] for r in warm_requests if r["kind"] != "search"} == {0.3}


class _CountingAPI(FakeGeminiAPI):
    """Takes two seconds per answer and remembers how many it wrote at once."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._count_lock = threading.Lock()
        self.now = self.peak = 0

    def answer(self, model: str, prompt: str) -> str:
        with self._count_lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(2.0)
        with self._count_lock:
            self.now -= 1
        return super().answer(model, prompt)


def test_concurrent_prompts_each_get_a_fresh_session_within_the_process_cap(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    ids = [f"prompt_{n}" for n in range(6)]
    results: dict[str, object] = {}
    with _CountingAPI(log_path=tmp_path / "api.jsonl") as api:
        resource = _resource(tmp_path, gemini_cli_path, api, max_gemini_processes=2)

        def ask(prompt_id: str) -> None:
            try:
                results[prompt_id] = _generate(resource, prompt_id, model="gemini-2.5-flash-lite" if prompt_id[-1] in "13" else "gemini-2.5-flash")
            except Exception as exc:  # reported below
                results[prompt_id] = exc

        threads = [threading.Thread(target=ask, args=(prompt_id,)) for prompt_id in ids]
        for thread in threads:
            thread.start()
        peak = 0
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, len(_warm_cli_processes(tmp_path)[1]))
            time.sleep(0.1)
    for prompt_id in ids:
        result = results[prompt_id]
        assert not isinstance(result, Exception), result
        assert result.transport == "acp" and result.response.startswith(f"# {prompt_id} ")
    services, clis = _warm_cli_processes(tmp_path)
    assert len(services) == 1 and 1 <= len(clis) <= 2 and peak <= 2
    # The process cap still bounds the prompts in flight, now that sessions share a CLI.
    assert api.peak == 2
    # No conversation carries over: every request holds exactly one prompt, on the row's model.
    for record in api.requests:
        assert record["prompt"].count("NEUROHELIX PROMPT:") == 1
        prompt_id = record["prompt"].split("NEUROHELIX PROMPT: ", 1)[1].split()[0]
        assert record["model"] == ("gemini-2.5-flash-lite" if prompt_id[-1] in "13" else "gemini-2.5-flash")
    assert len(api.requests) == len(ids)


class _StallingAPI(FakeGeminiAPI):
    """Answers only when told to: a prompt is in flight at the CLI for as long as the test needs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.release = threading.Event()
        self.arrived = threading.Event()

    def answer(self, model: str, prompt: str) -> str:
        self.arrived.set()
        self.release.wait(120)
        return super().answer(model, prompt)


def test_a_cli_killed_mid_prompt_fails_retryably_and_the_service_replaces_it(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with _StallingAPI() as api:
        resource = _resource(tmp_path, gemini_cli_path, api)
        failure: list[BaseException] = []
        thread = threading.Thread(target=lambda: failure.append(pytest.raises(GeminiFailure, _generate, resource).value))
        thread.start()
        assert api.arrived.wait(120), "the prompt never reached the API"
        (victim,) = _warm_cli_processes(tmp_path)[1]
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
        api.release.set()
        (error,) = failure
        assert error.kind is FailureKind.OTHER and error.kind.retryable  # the step's retry policy takes over
        assert "ended mid-prompt" in str(error) and "\n" not in str(error)
        # The retry is served by a new warm CLI; the killed one is gone.
        retried = _generate(resource)
        assert retried.transport == "acp" and retried.response.startswith("# ai_ecosystem_watch")
        clis = _warm_cli_processes(tmp_path)[1]
        assert clis and victim not in clis


def test_a_prompt_past_its_timeout_is_cancelled_and_the_cli_serves_the_next(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    with _StallingAPI() as api:
        resource = _resource(tmp_path, gemini_cli_path, api)
        with pytest.raises(GeminiFailure) as info:
            _generate(resource, timeout_s=5)
        assert info.value.kind is FailureKind.TIMEOUT and "cancelled" in str(info.value)
        before = _warm_cli_processes(tmp_path)[1]
        api.release.set()
        after = _generate(resource, "second_prompt")
        assert after.transport == "acp" and after.response.startswith("# second_prompt ")
        # The CLI acknowledged the cancel, so it stayed in the service and served the next prompt.
        assert before and _warm_cli_processes(tmp_path)[1] == before


def _cli_without_acp(tmp_path: Path, fake_cli: Path) -> Path:
    """A CLI from before ACP: rejects ``--acp`` as yargs does, answers headless calls as the fake."""
    wrapper = tmp_path / "old-cli" / "gemini"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do [ "$arg" = --acp ] && { echo "Unknown argument: acp" >&2; exit 1; }; done\n'
        f'exec {fake_cli} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def test_when_the_warm_cli_cannot_serve_the_call_is_made_one_shot_and_says_so(tmp_path, fake_cli, fake_cli_env, capfd):
    with FakeGeminiAPI() as api:
        result = _generate(_resource(tmp_path, str(_cli_without_acp(tmp_path, fake_cli)), api))
    assert result.transport == "oneshot" and result.metadata()["gemini.transport"].value == "oneshot"
    assert result.response.startswith("# ai_ecosystem_watch")
    # The step's log says why (Dagster's log handler writes the step's log to stderr here).
    (warning,) = [line for line in capfd.readouterr().err.splitlines() if "Gemini transport oneshot" in line]
    assert "a warm CLI did not start: the CLI exited with code 1: Unknown argument: acp" in warning
    assert "\n" not in warning
    (call,) = [json.loads(line) for line in fake_cli_env["log"].read_text().splitlines()]
    assert call["prompt"].startswith("NEUROHELIX PROMPT: ai_ecosystem_watch") and call["output"] == "json"


# -- sessions sharing one CLI (API-key auth) -------------------------------------------------------------


def _marked_prompt(prompt_id: str) -> str:
    """A prompt whose every API request names it: the main model's by its header, the search
    request by the query the fake derives from the instruction line."""
    return f"NEUROHELIX PROMPT: {prompt_id}\nDATE: 2026-11-20\nRESPONSE FORMAT: markdown\n\nSummarise {prompt_id} today."


def _requests_of(api: FakeGeminiAPI, prompt_id: str) -> list[dict]:
    return [r for r in api.requests if "enerateContent" in r["path"] and prompt_id in r["prompt"]]


def _assert_ledger_is_its_own(result_gate, usage, api: FakeGeminiAPI, prompt_id: str) -> None:
    """The prompt's ledger holds exactly what the API received for that prompt, per model."""
    mine = _requests_of(api, prompt_id)
    assert mine, f"the API saw nothing of {prompt_id}"
    assert dict(result_gate.requests) == dict(Counter(r["model"] for r in mine))
    assert set(usage) == {r["model"] for r in mine}
    for model, entry in usage.items():
        sent = [r for r in mine if r["model"] == model]
        assert entry.input_tokens == sum(r["usage"]["promptTokenCount"] for r in sent), model
        assert entry.total_tokens == sum(r["usage"]["totalTokenCount"] for r in sent), model


class _GatheringAPI(FakeGeminiAPI):
    """Holds each final answer until ``expected`` of them wait at once: they are then in flight together."""

    def __init__(self, expected: int, **kwargs):
        super().__init__(**kwargs)
        self._barrier = threading.Barrier(expected, timeout=60)
        self.gathered = True

    def answer(self, model: str, prompt: str) -> str:
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            self.gathered = False
        return super().answer(model, prompt)


def test_concurrent_prompts_share_one_cli_and_each_step_gets_its_own_ledger(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key-for-tests")
    rows = {
        "alpha_watch": dict(model="gemini-2.5-flash"),
        "beta_watch": dict(model="gemini-2.5-flash-lite"),
        "gamma_watch": dict(model="gemini-2.5-flash", tools=("google_web_search",)),
    }
    with _GatheringAPI(len(rows), log_path=tmp_path / "api.jsonl") as api:
        resource = _resource(tmp_path, gemini_cli_path, api)
        results: dict[str, object] = {}

        def ask(prompt_id: str) -> None:
            call = ModelCall(**{"timeout_s": 90, **rows[prompt_id]})
            try:
                with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
                    results[prompt_id] = resources.gemini.generate(context, prompt=_marked_prompt(prompt_id), call=call)
            except Exception as exc:  # reported below
                results[prompt_id] = exc

        threads = [threading.Thread(target=ask, args=(prompt_id,)) for prompt_id in rows]
        for thread in threads:
            thread.start()
        clis_seen: set[int] = set()
        while any(thread.is_alive() for thread in threads):
            clis_seen.update(_warm_cli_processes(tmp_path)[1])
            time.sleep(0.05)
    assert api.gathered, "the three prompts were never in flight at once"
    for prompt_id, row in rows.items():
        result = results[prompt_id]
        assert not isinstance(result, Exception), result
        assert result.transport == "acp" and result.response.startswith(f"# {prompt_id} ")
        _assert_ledger_is_its_own(result.gate, result.usage, api, prompt_id)
    # The search loop's three requests and its sources are the searching prompt's alone.
    assert results["gamma_watch"].gate.total == 3 and results["gamma_watch"].gate.grounding.chunks
    assert all("gamma_watch" in query for query in results["gamma_watch"].gate.grounding.queries)
    assert not results["alpha_watch"].gate.grounding.chunks and not results["beta_watch"].gate.grounding.chunks
    assert len(clis_seen) == 1 and _warm_cli_processes(tmp_path)[1] == sorted(clis_seen)
    # Every request the API received belongs to exactly one prompt.
    assert sorted(r["prompt"] for r in api.requests if "enerateContent" in r["path"]) == sorted(
        r["prompt"] for prompt_id in rows for r in _requests_of(api, prompt_id)
    )


class _HoldingAPI(FakeGeminiAPI):
    """Holds the final answer of the prompts named in ``held`` until ``release(prompt_id)``."""

    def __init__(self, *held: str, **kwargs):
        super().__init__(**kwargs)
        self._gates = {prompt_id: threading.Event() for prompt_id in held}
        self.arrived = {prompt_id: threading.Event() for prompt_id in held}

    def release(self, prompt_id: str) -> None:
        self._gates[prompt_id].set()

    def answer(self, model: str, prompt: str) -> str:
        for prompt_id, gate in self._gates.items():
            if f"NEUROHELIX PROMPT: {prompt_id}\n" in prompt:
                self.arrived[prompt_id].set()
                gate.wait(120)
        return super().answer(model, prompt)


def _service(tmp_path: Path, cli: str, api: FakeGeminiAPI, **overrides) -> WarmCliService:
    """A warm CLI service in this process, so a test can read its CLIs and set its constants."""
    fields = dict(
        gemini_cli=cli, rate_limit_db=str(tmp_path / "rate.sqlite"), workdir_root=str(tmp_path / "workdirs"),
        gemini_api_url=api.base_url, kill_grace_s=2.0, warm_cli_idle_s=60.0,
    )
    config = gemini_config(tmp_path, **{**fields, **overrides})
    config.warm_cli_dir.mkdir(parents=True, exist_ok=True)
    start = ServiceStart(config, cli, gemini_env(tmp_path, api.base_url), {"GOOGLE_GEMINI_BASE_URL": api.base_url}, [])
    return WarmCliService(start)


def _ask(service: WarmCliService, prompt_id: str, replies: dict, timeout_s: float = 90) -> threading.Thread:
    call = ModelCall(model="gemini-2.5-flash", timeout_s=timeout_s)
    request = {
        "op": "prompt", "prompt": _marked_prompt(prompt_id), "settings": call.settings(),
        "call": {"model": call.model, "timeout_s": call.timeout_s, "approval_mode": call.approval_mode},
    }
    thread = threading.Thread(target=lambda: replies.__setitem__(prompt_id, service.serve(request, threading.Event())))
    thread.start()
    return thread


def _gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        stat = process_stat(pid)
        if stat is None or stat.exited:
            return True
        time.sleep(0.1)
    return False


def test_a_prompt_whose_cancel_is_not_acknowledged_fails_alone_and_drains_its_cli(tmp_path, gemini_cli_path):
    # No grace: the cancel is never acknowledged in time, as with a CLI stuck in its turn.
    with _HoldingAPI("stuck_one", "steady_one", log_path=tmp_path / "api.jsonl") as api:
        service = _service(tmp_path, gemini_cli_path, api, kill_grace_s=0.0)
        try:
            replies: dict[str, dict] = {}
            stuck = _ask(service, "stuck_one", replies, timeout_s=5)
            assert api.arrived["stuck_one"].wait(60)
            steady = _ask(service, "steady_one", replies)
            assert api.arrived["steady_one"].wait(60)
            (warm,) = service._procs
            stuck.join(60)
            assert replies["stuck_one"]["failure"]["kind"] == "timeout"
            # The other prompt is still in flight on the same CLI, which now takes no new session.
            assert warm.draining and warm.alive and warm.in_flight == 1 and steady.is_alive()
            api.release("steady_one")
            steady.join(60)
            reply = replies["steady_one"]
            assert reply["ok"] and reply["response"].startswith("# steady_one ") and reply["cli_pid"] == warm.cli.pid
            assert reply["gate"]["requests"] == dict(Counter(r["model"] for r in _requests_of(api, "steady_one")))
            assert _gone(warm.cli.pid), "the drained CLI did not end after its last prompt"
            after = _ask(service, "after_one", replies)
            after.join(90)
            assert replies["after_one"]["ok"] and replies["after_one"]["cli_pid"] != warm.cli.pid
        finally:
            api.release("stuck_one")
            api.release("steady_one")
            service.close()


def test_a_cli_past_its_share_of_sessions_drains_instead_of_ending_its_prompts(tmp_path, gemini_cli_path, monkeypatch):
    monkeypatch.setattr(service_module, "MAX_PROMPTS_PER_CLI", 2)
    with _HoldingAPI("long_one", log_path=tmp_path / "api.jsonl") as api:
        service = _service(tmp_path, gemini_cli_path, api)
        try:
            replies: dict[str, dict] = {}
            long = _ask(service, "long_one", replies)
            assert api.arrived["long_one"].wait(60)
            _ask(service, "second_one", replies).join(90)
            (first,) = service._procs
            assert replies["second_one"]["ok"] and replies["second_one"]["cli_pid"] == first.cli.pid
            assert first.draining  # its second session was its share
            _ask(service, "third_one", replies).join(90)
            # A new CLI took the third prompt while the first still serves its prompt in flight.
            assert replies["third_one"]["ok"] and replies["third_one"]["cli_pid"] != first.cli.pid
            assert first.alive and long.is_alive() and len(service._procs) == 2
            api.release("long_one")
            long.join(60)
            assert replies["long_one"]["ok"] and replies["long_one"]["response"].startswith("# long_one ")
            assert _gone(first.cli.pid)
            assert [w.cli.pid for w in service._procs] == [replies["third_one"]["cli_pid"]]
        finally:
            api.release("long_one")
            service.close()


@pytest.mark.parametrize(
    ("stored", "key", "expected"),
    [
        ("gemini-api-key", "k", "gemini-api-key"),  # the configured endpoint's home, or the operator's choice
        ("oauth-personal", None, None),  # a Google login: authenticate would clear its cached credentials
        ("oauth-personal", "k", None),
        (None, "k", None),  # a key in the environment only: authenticate would write the operator's settings
        ("gemini-api-key", None, None),
    ],
)
def test_sessions_share_a_cli_only_where_authenticate_changes_nothing(tmp_path, stored, key, expected):
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    settings = {"security": {"auth": {"selectedType": stored}}} if stored else {}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env = {"HOME": str(home), **({"GEMINI_API_KEY": key} if key else {})}
    assert shared_auth_method(env) == expected
