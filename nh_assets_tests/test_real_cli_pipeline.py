"""A whole day through the REAL @google/gemini-cli against the project's fake Gemini API.

This is the operator's command, run as a subprocess exactly as the README gives it:
``dagster asset materialize -m nh_assets --select '*' --partition DAY`` with ``NH_GEMINI_CLI``,
``NH_DATA_ROOT`` and ``DAGSTER_HOME`` set. The day before is materialized first (in process,
with the fast fake CLI) so that yesterday's ideas and the 7-day window have something to carry.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import sys
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.artifacts import strip_front_matter
from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.settings import load_settings
from nh_assets_tests.dagster_server import free_port

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY1, DAY2 = "2026-11-21", "2026-11-22"


def _server_requests(log: Path) -> dict[str, dict]:
    """Generation requests the fake API received, by prompt id, for DAY2."""
    found = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        prompt = record.get("prompt") or ""
        if f"DATE: {DAY2}" not in prompt or "NEUROHELIX PROMPT:" not in prompt:
            continue
        prompt_id = prompt.split("NEUROHELIX PROMPT:", 1)[1].split()[0]
        assert prompt_id not in found, f"{prompt_id} was generated twice"
        found[prompt_id] = record
    return found


@pytest.fixture
def day_one(tmp_path, dagster_home, fake_cli, registry):
    env = {
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC",
    }
    defs = build_definitions(load_settings(env), registry)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        assert defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=DAY1, instance=instance).success
    return env


def test_full_day_through_the_real_cli(day_one, tmp_path, dagster_home, registry, gemini_cli_path, fake_gemini_api, gemini_env_factory):
    env = gemini_env_factory(fake_gemini_api.base_url)
    # The forkserver's socket lives in TMPDIR; pytest's deep tmp paths exceed AF_UNIX's 108 bytes.
    env.update(day_one, NH_GEMINI_CLI=gemini_cli_path, TMPDIR=tempfile.mkdtemp(prefix="nh-"))
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", "*", "--partition", DAY2],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = Path(env["NH_DATA_ROOT"])
    for spec in registry.prompts:
        assert (data / spec.output_path(DAY2)).is_file(), spec.prompt_id

    requests = _server_requests(Path(fake_gemini_api.log_path))
    llm_ids = {spec.prompt_id for spec in registry.prompts if spec.uses_llm}
    assert set(requests) == llm_ids

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for prompt_id in sorted(llm_ids):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(prompt_id), asset_partitions=[DAY2]), limit=1
            ).records
            meta = records[0].asset_materialization.metadata
            usage = requests[prompt_id]["usage"]
            assert meta["gemini.input_tokens"].value == usage["promptTokenCount"], prompt_id
            assert meta["gemini.output_tokens"].value == usage["candidatesTokenCount"], prompt_id
            assert meta["gemini.total_tokens"].value == usage["totalTokenCount"], prompt_id
            assert meta["gemini.demo"].value is False

    yesterday = strip_front_matter((data / f"outputs/daily/{DAY1}/concept_synthesizer.md").read_text()).strip()
    novelty_prompt = requests["novelty_filter"]["prompt"]
    assert f"concept_synthesizer for {DAY1}" in novelty_prompt
    assert yesterday.splitlines()[2] in novelty_prompt
    report = strip_front_matter((data / f"reports/daily_report_{DAY1}.md").read_text()).strip()
    continuity_prompt = requests["continuity_builder"]["prompt"]
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
    assert "Gemini auth: exit 41: Please set an Auth method" in output
    assert "fix: export GEMINI_API_KEY" in output and "NH_DEMO=1" in output
    assert "STEP_UP_FOR_RETRY" not in output
    assert not (tmp_path / f"data/outputs/daily/{DAY2}/ai_ecosystem_watch.md").exists()


def test_demo_mode_without_the_demo_api_is_a_settings_error_naming_the_fix(tmp_path, dagster_home, gemini_cli_path):
    env = _operator_env(tmp_path, dagster_home, gemini_cli_path, NH_DEMO="1")
    result = _materialize_one(env, tmp_path)
    assert result.returncode != 0
    assert "NH_DEMO=1 needs the demo API" in result.stderr and "scripts/dev.sh --demo" in result.stderr
