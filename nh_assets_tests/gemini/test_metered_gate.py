"""The rate gate's usage reading against the project's fake Gemini API: an answer's usage is
recorded before the CLI can read the answer's end, so the warm CLI service never reads a
prompt's figures too early, however slowly the gate's thread runs."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini import rate_gate
from nh_assets.gemini.rate_gate import GateLedger, RateGate, summed

pytestmark = pytest.mark.fast


@pytest.fixture
def api(tmp_path):
    with FakeGeminiAPI(log_path=tmp_path / "api.jsonl") as server:
        yield server


def _ask(gate: RateGate, model: str) -> bytes:
    body = {"contents": [{"role": "user", "parts": [{"text": "NEUROHELIX PROMPT: gate_probe\nDATE: 2026-11-20\n\nSummarise."}]}]}
    request = urllib.request.Request(
        f"{gate.url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def test_usage_is_recorded_before_the_answer_ends_even_when_the_gate_thread_is_slow(api, monkeypatch):
    parse = rate_gate.usage_of_answer

    def slow_parse(body: bytes):
        time.sleep(0.5)  # the gate's thread descheduled on a busy machine
        return parse(body)

    monkeypatch.setattr(rate_gate, "usage_of_answer", slow_parse)
    gate = RateGate(api.base_url, take_permit=lambda _log: 0.0)
    try:
        gate.begin()
        answer = _ask(gate, "gemini-2.5-flash")
        ledger = summed([gate.ledger()])  # what the service reads the moment the CLI has its answer
        usage = ledger.usage
    finally:
        gate.close()
    last = [json.loads(line[5:]) for line in answer.decode().splitlines() if line.startswith("data:")][-1]
    sent = last["usageMetadata"]
    assert ledger.requests == {"gemini-2.5-flash": 1}
    assert usage["gemini-2.5-flash"].requests == 1
    assert usage["gemini-2.5-flash"].output_tokens == sent["candidatesTokenCount"]
    assert usage["gemini-2.5-flash"].input_tokens == sent["promptTokenCount"]


def test_a_new_prompt_starts_from_nothing(api):
    gate = RateGate(api.base_url, take_permit=lambda _log: 0.0)
    try:
        gate.begin()
        _ask(gate, "gemini-2.5-flash")
        _ask(gate, "gemini-2.5-pro")
        first = gate.ledger().usage
        gate.begin()
        _ask(gate, "gemini-2.5-pro")
        ledger = gate.ledger()
        second = ledger.usage
    finally:
        gate.close()
    assert {m: u.requests for m, u in first.items()} == {"gemini-2.5-flash": 1, "gemini-2.5-pro": 1}
    assert {m: u.requests for m, u in second.items()} == {"gemini-2.5-pro": 1} and ledger.total == 1


def test_ledgers_add_like_usage_does():
    from collections import Counter

    from nh_assets.gemini.failures import FailureKind
    from nh_assets.gemini.usage import ModelUsage

    refusal = rate_gate.GateRefusal(FailureKind.DAILY_CAP, "the day cap is used up")
    a = GateLedger(Counter({"m": 1}), {"m": ModelUsage(1, 10, 5, 0, 15)}, waited_s=1.5)
    b = GateLedger(Counter({"m": 2, "s": 1}), {"m": ModelUsage(2, 3, 4, 1, 8), "s": ModelUsage(1, 1, 1, 0, 2)},
                   waited_s=0.5, refusal=refusal)
    both = a + b
    assert both.requests == {"m": 3, "s": 1} and both.total == 4 and both.waited_s == 2.0
    assert both.usage == {"m": ModelUsage(3, 13, 9, 1, 23), "s": ModelUsage(1, 1, 1, 0, 2)}
    assert both.refusal is refusal and summed([a, b]) == both
    # Adding leaves both sides as they were: a step's results are summed more than once.
    assert a.requests == {"m": 1} and a.usage == {"m": ModelUsage(1, 10, 5, 0, 15)} and a.refusal is None


def test_lent_gates_give_each_call_at_once_its_own_gate_reuse_them_and_tell_each_calls_log(api):
    from nh_assets.gemini.lent_gates import LentGates

    told: list[tuple[str, str]] = []

    def take_permit(call_log=None) -> float:
        (call_log or (lambda message: told.append(("nobody", message))))("waited for a permit")
        return 0.0

    lender = LentGates(api.base_url, take_permit)
    try:
        first = lender.borrow(lambda message: told.append(("first", message)))
        second = lender.borrow(lambda message: told.append(("second", message)))
        assert first is not second  # two calls at once: two gates, two ledgers
        _ask(first, "gemini-2.5-flash")
        _ask(second, "gemini-2.5-pro")
        _ask(second, "gemini-2.5-pro")
        assert first.ledger().requests == {"gemini-2.5-flash": 1}
        assert second.ledger().requests == {"gemini-2.5-pro": 2}
        assert sorted(who for who, _ in told) == ["first", "second", "second"]
        lender.give_back(first, reusable=True)
        third = lender.borrow(lambda message: told.append(("third", message)))
        assert third is first and third.ledger().requests == {}  # lent again, from an empty ledger
        _ask(third, "gemini-2.5-flash")
        assert told[-1][0] == "third"  # the next call's waits go to the next call's log
    finally:
        lender.close()
