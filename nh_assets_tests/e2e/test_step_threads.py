"""The daily job as the schedule runs it, with the default executor (``step_threads``): every step
of the run is a thread of one run worker, the steps really run at once, and each step's gate
ledger holds its own call and no other, as the fake Gemini API saw the calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.registry import load_registry
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.fakes import pipeline_env
from nh_assets_tests.support.intervals import max_open

pytestmark = pytest.mark.dagster

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY = "2026-11-20"
REGISTRY = load_registry(REPO_ROOT / "registry" / "prompts.tsv")


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    base = tmp_path_factory.mktemp("threads")
    api = FakeGeminiAPI().start()
    try:
        env = {
            **os.environ,
            **pipeline_env(
                base, NH_GEMINI_API_URL=api.base_url, FAKE_GEMINI_LATENCY="1.0",
                FAKE_GEMINI_LOG=str(base / "calls.jsonl"), PYTHONWARNINGS="ignore",
            ),
        }
        assert "NH_EXECUTOR" not in env  # the default executor, as an operator gets it
        subprocess.run([sys.executable, "-m", "nh_assets.pools", "apply"], env=env, check=True, capture_output=True)
        done = subprocess.run(
            [DAGSTER, "job", "execute", "-m", "nh_assets", "-j", "neurohelix_daily",
             "--tags", json.dumps({"dagster/partition": DAY})],
            env=env, cwd=base, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            (run,) = instance.get_run_records()
            events = instance.all_logs(run.dagster_run.run_id)
            metadata = {
                spec.prompt_id: instance.fetch_materializations(dg.AssetKey(spec.prompt_id), limit=1)
                .records[0].asset_materialization.metadata
                for spec in REGISTRY.prompts
            }
        calls = [json.loads(line) for line in (base / "calls.jsonl").read_text().splitlines()]
        yield events, metadata, calls, list(api.requests)
    finally:
        api.stop()


def test_every_step_of_the_run_runs_in_the_run_worker_and_steps_overlap(day):
    events, _metadata, calls, _requests = day
    # (The launcher writes the planned events before the run worker starts: they have no pid.)
    step_pids = {e.dagster_event.pid for e in events if e.dagster_event and e.dagster_event.step_key and e.dagster_event.pid}
    run_pids = {e.dagster_event.pid for e in events if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_START"}
    assert step_pids == run_pids and len(run_pids) == 1
    assert sum(e.dagster_event.event_type_value == "STEP_SUCCESS" for e in events if e.dagster_event) == len(REGISTRY.prompts)
    assert not any(e.dagster_event.event_type_value == "STEP_WORKER_STARTING" for e in events if e.dagster_event)
    # Threads, yet the calls ran at once: the first four research prompts are in pools of 2 and 4.
    assert max_open([(c["start"], c["end"]) for c in calls]) >= 3


def test_each_steps_ledger_is_its_own_call_as_the_api_saw_it(day):
    _events, metadata, _calls, requests = day
    llm = [spec.prompt_id for spec in REGISTRY.prompts if spec.uses_llm]
    generations = [r for r in requests if r.get("kind") not in ("not_found", "web")]
    # One request per step, counted by the step's own gate: a gate shared by two steps at once
    # would give one of them two requests and the other none.
    assert {pid: metadata[pid]["gemini.api_requests"].value for pid in llm} == {pid: 1 for pid in llm}
    assert Counter(metadata[pid]["gemini.input_tokens"].value for pid in llm) == Counter(
        r["usage"]["promptTokenCount"] for r in generations
    )
    assert sum(metadata[pid]["gemini.input_tokens"].value for pid in llm) > 0
