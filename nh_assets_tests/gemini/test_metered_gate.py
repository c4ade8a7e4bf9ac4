"""The warm pool's metered gate against the project's fake Gemini API: an answer's usage is
recorded before the CLI can read the answer's end, so the pool never reads a prompt's figures
too early, however slowly the gate's thread runs."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.acp import metered_gate
from nh_assets.gemini.acp.metered_gate import MeteredGate, merged

pytestmark = pytest.mark.fast


@pytest.fixture
def api(tmp_path):
    with FakeGeminiAPI(log_path=tmp_path / "api.jsonl") as server:
        yield server


def _ask(gate: MeteredGate, model: str) -> bytes:
    body = {"contents": [{"role": "user", "parts": [{"text": "NEUROHELIX PROMPT: gate_probe\nDATE: 2026-11-20\n\nSummarise."}]}]}
    request = urllib.request.Request(
        f"{gate.url}/v1beta/models/{model}:streamGenerateContent?alt=sse",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def test_usage_is_recorded_before_the_answer_ends_even_when_the_gate_thread_is_slow(api, monkeypatch):
    parse = metered_gate.usage_of_answer

    def slow_parse(body: bytes):
        time.sleep(0.5)  # the gate's thread descheduled on a busy machine
        return parse(body)

    monkeypatch.setattr(metered_gate, "usage_of_answer", slow_parse)
    gate = MeteredGate(api.base_url, take_slot=lambda: 0.0)
    try:
        gate.begin()
        answer = _ask(gate, "gemini-2.5-flash")
        ledger, usage = merged([gate])  # what the pool reads the moment the CLI has its answer
    finally:
        gate.close()
    last = [json.loads(line[5:]) for line in answer.decode().splitlines() if line.startswith("data:")][-1]
    sent = last["usageMetadata"]
    assert ledger.requests == {"gemini-2.5-flash": 1}
    assert usage["gemini-2.5-flash"].requests == 1
    assert usage["gemini-2.5-flash"].output_tokens == sent["candidatesTokenCount"]
    assert usage["gemini-2.5-flash"].input_tokens == sent["promptTokenCount"]


def test_a_new_prompt_starts_from_nothing(api):
    gate = MeteredGate(api.base_url, take_slot=lambda: 0.0)
    try:
        gate.begin()
        _ask(gate, "gemini-2.5-flash")
        _ask(gate, "gemini-2.5-pro")
        _, first = merged([gate])
        gate.begin()
        _ask(gate, "gemini-2.5-pro")
        ledger, second = merged([gate])
    finally:
        gate.close()
    assert {m: u.requests for m, u in first.items()} == {"gemini-2.5-flash": 1, "gemini-2.5-pro": 1}
    assert {m: u.requests for m, u in second.items()} == {"gemini-2.5-pro": 1} and ledger.total == 1
