"""A whole day through the REAL @google/gemini-cli against the project's fake Gemini API.

This is the operator's command, run as a subprocess exactly as docs/operating.md ("Running a day")
gives it: ``dagster asset materialize -m nh_assets --select '*' --partition DAY`` with ``NH_GEMINI_CLI``,
``NH_DATA_ROOT`` and ``DAGSTER_HOME`` set. The day before is materialized first (in process,
with the fast fake CLI) so that yesterday's ideas and the 7-day window have something to carry.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.artifacts import strip_front_matter
from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.settings import REPO_ROOT, load_settings
from nh_assets_tests.support.dagster_server import free_port
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets_tests.support.fakes import ONESHOT_FOR_THE_FAKE_CLI, shared_fake_api

pytestmark = pytest.mark.real_cli

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY1, DAY2 = "2026-11-21", "2026-11-22"


def _server_requests(log: Path) -> dict[str, list[dict]]:
    """Requests of the main model the fake API received, by prompt id, for DAY2, in order."""
    found: dict[str, list[dict]] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        prompt = record.get("prompt") or ""
        if f"DATE: {DAY2}" not in prompt or "NEUROHELIX PROMPT:" not in prompt:
            continue
        found.setdefault(prompt.split("NEUROHELIX PROMPT:", 1)[1].split()[0], []).append(record)
    return found


def _search_requests(log: Path) -> list[dict]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "search"]


@pytest.fixture
def day_one(tmp_path, dagster_home, fake_cli, registry):
    env = {
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC",
        "NH_GEMINI_API_URL": shared_fake_api().base_url, **ONESHOT_FOR_THE_FAKE_CLI,
    }
    defs = build_definitions(load_settings(env), registry)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        assert defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=DAY1, instance=instance).success
    return env


def test_full_day_through_the_real_cli(day_one, tmp_path, dagster_home, registry, gemini_cli_path, fake_gemini_api, gemini_env_factory):
    env = gemini_env_factory(fake_gemini_api.base_url)
    # The forkserver's socket lives in TMPDIR; pytest's deep tmp paths exceed AF_UNIX's 108 bytes.
    env.update(day_one, NH_GEMINI_CLI=gemini_cli_path, TMPDIR=tempfile.mkdtemp(prefix="nh-"))
    env.pop("NH_GEMINI_TRANSPORT")  # the default transport: warm CLIs
    # As an operator would: the CLI's own GOOGLE_GEMINI_BASE_URL names the endpoint; the gate keeps it.
    del env["NH_GEMINI_API_URL"]
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", "*", "--partition", DAY2],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Gemini transport oneshot" not in result.stderr  # every prompt was served by a warm CLI
    # The warm CLI service served the command and ends with it: it never outlives what it serves.
    service_log = next((dagster_home / "gemini_warm_cli").glob("*.log")).read_text()
    for _ in range(100):
        if "every owner it served is gone: stopping" in service_log:
            break
        time.sleep(0.2)
        service_log = next((dagster_home / "gemini_warm_cli").glob("*.log")).read_text()
    assert "every owner it served is gone: stopping" in service_log, service_log[-2000:]
    data = Path(env["NH_DATA_ROOT"])
    for spec in registry.prompts:
        assert (data / spec.output_path(DAY2)).is_file(), spec.prompt_id

    log = Path(fake_gemini_api.log_path)
    requests = _server_requests(log)
    llm_ids = {spec.prompt_id for spec in registry.prompts if spec.uses_llm}
    assert set(requests) == llm_ids
    system_prompt = (REPO_ROOT / "registry" / "system_prompt.md").read_text()
    searches = _search_requests(log)

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for prompt_id in sorted(llm_ids):
            spec = registry.by_id(prompt_id)
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(prompt_id), asset_partitions=[DAY2]), limit=1
            ).records
            meta = records[0].asset_materialization.metadata
            calls = requests[prompt_id]
            # What the registry says reached the API, on every request of the main model.
            for call in calls:
                assert call["system_chars"] == len(system_prompt.strip()), prompt_id
                assert call["tools"] == sorted(spec.allowed_tools), prompt_id
                assert call["temperature"] == spec.temperature, prompt_id
            models = meta["gemini.models"].value
            main = models[spec.model]
            assert main["requests"] == main["gate_requests"] == len(calls), prompt_id
            assert main["input"] == sum(c["usage"]["promptTokenCount"] for c in calls), prompt_id
            assert main["output"] == sum(c["usage"]["candidatesTokenCount"] for c in calls), prompt_id
            if "google_web_search" in spec.allowed_tools:
                # The search loop: call, search on the CLI's web-search model, answer with the results.
                assert [c["kind"] for c in calls] == ["function_call", "streamGenerateContent"], prompt_id
                assert models["gemini-3-flash-preview"]["requests"] == 1, prompt_id
                assert meta["gemini.api_requests"].value == 3, prompt_id
                note = (data / spec.output_path(DAY2)).read_text()
                # The grounding redirects were resolved: the note cites the fake's article pages.
                assert "## Sources" in note and f"{fake_gemini_api.base_url}/articles/" in note, prompt_id
                assert "grounding-api-redirect" not in note, prompt_id
            else:
                assert len(calls) == 1 and meta["gemini.api_requests"].value == 1, prompt_id
            assert meta["gemini.input_tokens"].value == sum(m["input"] for m in models.values()), prompt_id
            assert meta["gemini.demo"].value is False
            assert meta["gemini.transport"].value == "acp", prompt_id
    research = [s for s in registry.prompts if "google_web_search" in s.allowed_tools]
    assert len(searches) == len(research)
    # Our system prompt instead of the CLI's 23 KB agent prompt: a research prompt's first request is small.
    first = sorted(requests[s.prompt_id][0]["bytes"] for s in research)
    assert first[len(first) // 2] <= 8 * 1024, first

    yesterday = strip_front_matter((data / f"outputs/daily/{DAY1}/concept_synthesizer.md").read_text()).strip()
    novelty_prompt = requests["novelty_filter"][0]["prompt"]
    assert f"concept_synthesizer for {DAY1}" in novelty_prompt
    assert yesterday.splitlines()[2] in novelty_prompt
    report = strip_front_matter((data / f"reports/daily_report_{DAY1}.md").read_text()).strip()
    continuity_prompt = requests["continuity_builder"][0]["prompt"]
    assert f"daily_aggregator for {DAY1}" in continuity_prompt
    assert report.splitlines()[-1] in continuity_prompt
    assert f"daily_aggregator@{DAY1}" not in continuity_prompt.split("Not available", 1)[-1]


def _operator_env(tmp_path: Path, dagster_home: Path, gemini_cli_path: str, **extra: str) -> dict[str, str]:
    """A newcomer's shell: no Gemini credentials, an empty HOME, nothing but the project's settings."""
    home = tmp_path / "newcomer-home"
    home.mkdir(exist_ok=True)
    import os

    return {
        "PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": gemini_cli_path,
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC", **extra,
    }


def _materialize_one(env: dict[str, str], cwd: Path, asset: str = "ai_ecosystem_watch") -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", asset, "--partition", DAY2],
        env=env, capture_output=True, text=True, timeout=300, cwd=cwd,
    )


def test_demo_mode_runs_without_credentials_and_says_it_is_fake(tmp_path, dagster_home, gemini_cli_path):
    port = free_port()
    # The demo API as an operator starts it (scripts/dev.sh --demo): a process of its own.
    demo = subprocess.Popen(
        [sys.executable, "-m", "nh_assets.demo", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert demo.stdout.readline().strip() == f"http://127.0.0.1:{port}"
        env = _operator_env(
            tmp_path, dagster_home, gemini_cli_path, NH_DEMO="1", NH_GEMINI_API_URL=f"http://127.0.0.1:{port}"
        )
        result = _materialize_one(env, tmp_path)
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = (tmp_path / f"data/outputs/daily/{DAY2}/ai_ecosystem_watch.md").read_text()
    assert "demo: true" in text.split("---\n", 2)[1]
    assert "DEMO OUTPUT" in text and "fake Gemini" in text
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        record = instance.fetch_materializations(dg.AssetKey("ai_ecosystem_watch"), limit=1).records[0]
        meta = record.asset_materialization.metadata
        assert meta["gemini.demo"].value is True and meta["gemini.input_tokens"].value > 0
    # Nothing of the demo's CLI home or working directories is left behind.
    assert list((dagster_home / "gemini_workdirs").iterdir()) == []


def test_without_credentials_the_real_cli_fails_once_with_the_fix(tmp_path, dagster_home, gemini_cli_path):
    env = _operator_env(tmp_path, dagster_home, gemini_cli_path)
    result = _materialize_one(env, tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # With the rate gate as its endpoint the CLI says "Invalid auth method selected." rather than
    # "Please set an Auth method": the same exit 41, classified as auth, with the same fix.
    assert "Gemini auth: exit 41: " in output
    assert "fix: export GEMINI_API_KEY" in output and "NH_DEMO=1" in output
    assert "STEP_UP_FOR_RETRY" not in output
    assert not (tmp_path / f"data/outputs/daily/{DAY2}/ai_ecosystem_watch.md").exists()


def test_demo_mode_without_the_demo_api_is_a_settings_error_naming_the_fix(tmp_path, dagster_home, gemini_cli_path):
    env = _operator_env(tmp_path, dagster_home, gemini_cli_path, NH_DEMO="1")
    result = _materialize_one(env, tmp_path)
    assert result.returncode != 0
    assert "NH_DEMO=1 needs the demo API" in result.stderr and "scripts/dev.sh --demo" in result.stderr


def _max_in_window(times: list[float], window_s: float = 60.0) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times)), default=0)


def test_two_days_at_once_never_exceed_the_limit_at_the_api(tmp_path, dagster_home, registry, gemini_cli_path):
    """Measured where Google's quota applies: at the API, counting the search loop's requests."""
    rate = 5
    research = [s.prompt_id for s in registry.prompts if "google_web_search" in s.allowed_tools][:2]
    with FakeGeminiAPI(log_path=tmp_path / "api.jsonl") as api:
        env = _operator_env(
            tmp_path, dagster_home, gemini_cli_path,
            NH_GEMINI_API_URL=api.base_url, GEMINI_API_KEY="fake-key-for-tests", NH_RATE_PER_MINUTE=str(rate),
            TMPDIR=tempfile.mkdtemp(prefix="nh-"),
        )
        # The instance exists before the two runs, as scripts/dev.sh makes it (pools apply): two
        # processes creating a fresh SQLite instance at once race on its schema version table.
        subprocess.run([sys.executable, "-m", "nh_assets.pools", "apply"], env=env, check=True, capture_output=True)
        runs = [
            subprocess.Popen(
                [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", ",".join(research), "--partition", day],
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for day in (DAY1, DAY2)
        ]
        outputs = [run.communicate(timeout=900)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
        generations = [r for r in api.requests if r["status"] == 200 and r["kind"] != "countTokens"]
    # Every research call is a loop of at least three requests (the CLI may add its own checks, which
    # the gate counts too), so the limit binds many times over.
    assert len(generations) >= 2 * len(research) * 3 > rate
    assert _max_in_window([r["time"] for r in generations]) <= rate
