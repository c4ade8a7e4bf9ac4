"""The installed ``nh`` script, run as an operator runs it, against a real ``dagster dev``.

Every call is a subprocess of ``.venv/bin/nh`` with its working directory under tmp_path (so no
developer's ``.env`` leaks in). Judged from the instance's own records (run records,
materialization metadata), the fake CLI's call log and the exit codes, never from mocks. One
``dagster dev`` with the fake CLI serves the module; the tests that need none come first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.cli import exit_codes
from nh_assets.registry import load_registry
from nh_assets.registry.__main__ import EXIT_INVALID
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.dagster_server import free_port, overlaps, run_span, running_dagster, wait_for_runs
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

NH = Path(sys.executable).parent / "nh"
REGISTRY = load_registry(REPO_ROOT / "registry" / "prompts.tsv")
PROMPTS = [spec.prompt_id for spec in REGISTRY.prompts]
LATENCY_S = 3.0


def nh(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NH), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """Settings for nh with no webserver listening where it looks."""
    return {
        **os.environ,
        **pipeline_env(tmp_path, NH_WEBSERVER_URL=f"http://127.0.0.1:{free_port()}", PYTHONWARNINGS="ignore"),
    }


# --- without a server ----------------------------------------------------------------------------


def test_validate_exits_10_on_a_broken_registry_and_0_on_the_shipped_one(tmp_path, offline_env):
    assert exit_codes.INVALID == EXIT_INVALID
    broken = tmp_path / "broken.tsv"
    lines = (REPO_ROOT / "registry" / "prompts.tsv").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    columns = lines[header].split("\t")
    row = lines[header + 1].split("\t")
    row[columns.index("wave")] = "nowave"
    broken.write_text("\n".join([*lines[: header + 1], "\t".join(row), *lines[header + 2 :]]) + "\n")

    bad = nh("validate", str(broken), env=offline_env, cwd=tmp_path)
    assert bad.returncode == 10
    assert "Traceback" not in bad.stderr
    assert f"{broken}:{header + 2}:" in bad.stderr and "wave" in bad.stderr

    good = nh("validate", env=offline_env, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"OK: {len(PROMPTS)} prompts" in good.stdout


@pytest.mark.parametrize("args", [("run", "2026-11-20"), ("backfill", "2026-11-20..2026-11-21")])
def test_without_a_running_instance_nh_says_how_to_start_one_in_one_line(tmp_path, offline_env, args):
    proc = nh(*args, env=offline_env, cwd=tmp_path)
    assert proc.returncode == exit_codes.UNAVAILABLE
    line = assert_one_line_error(proc)
    assert "no Dagster webserver at " + offline_env["NH_WEBSERVER_URL"] in line
    assert "bash scripts/dev.sh" in line


def test_config_shows_sources_and_never_prints_a_secret(tmp_path, offline_env):
    secrets = {
        "CLOUDFLARE_API_TOKEN": "cf-token-0123456789abcdef",
        "NH_ALERT_WEBHOOK": "https://hooks.example.invalid/services/T000/B000/hook-secret-42",
        "NH_POSTGRES_URL": "postgresql+psycopg2://nh_assets:pg-pass-s3cr3t@db.internal:5432/nh_assets",
        "GEMINI_API_KEY": "AIzaFakeKeyForTheTest1234",
    }
    env = {**offline_env, **secrets, "NH_RATE_PER_DAY": "900", "NH_EXECUTOR_MAX_CONCURRENT": "3"}
    # .env wins over the environment for what it defines, as dagster dev loads it.
    (tmp_path / ".env").write_text("NH_RATE_PER_MINUTE=20\nNH_EXECUTOR_MAX_CONCURRENT=5\n")

    human = nh("config", env=env, cwd=tmp_path)
    as_json = nh("config", "--json", env=env, cwd=tmp_path)
    for proc in (human, as_json):
        assert proc.returncode == 0, proc.stderr
        for value in secrets.values():
            assert value not in proc.stdout + proc.stderr
        assert "pg-pass-s3cr3t" not in proc.stdout + proc.stderr and "hook-secret-42" not in proc.stdout
    rows = {row["name"]: row for row in json.loads(as_json.stdout)["settings"]}
    assert rows["NH_POSTGRES_URL"]["value"] == "postgresql+psycopg2://nh_assets:***@db.internal:5432/nh_assets"
    assert rows["CLOUDFLARE_API_TOKEN"]["value"] == rows["NH_ALERT_WEBHOOK"]["value"] == "***"
    assert (rows["NH_RATE_PER_MINUTE"]["value"], rows["NH_RATE_PER_MINUTE"]["source"]) == ("20", ".env")
    assert rows["NH_EXECUTOR_MAX_CONCURRENT"]["value"] == "5"
    assert rows["NH_EXECUTOR_MAX_CONCURRENT"]["source"] == ".env (over environment)"
    assert (rows["NH_RATE_PER_DAY"]["value"], rows["NH_RATE_PER_DAY"]["source"]) == ("900", "environment")
    assert (rows["NH_RETENTION_DAYS"]["value"], rows["NH_RETENTION_DAYS"]["source"]) == ("90", "default")
    # Postgres storage implies the Postgres bucket: the resolved value, not the raw default.
    assert rows["NH_RATE_LIMIT_BACKEND"]["value"] == "postgres"

    bad = nh("config", env={**env, "NH_SCHEDULE_HOUR": "25"}, cwd=tmp_path)
    assert bad.returncode == exit_codes.INVALID
    assert "NH_SCHEDULE_HOUR" in bad.stdout and not any(v in bad.stdout + bad.stderr for v in secrets.values())


# --- through a real dagster dev ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One ``dagster dev`` (webserver + daemon) whose fake CLI answers after LATENCY_S, and the
    environment nh runs with to reach it."""
    base = tmp_path_factory.mktemp("nh_cli")
    env = {
        **os.environ,
        **pipeline_env(
            base,
            FAKE_GEMINI_LATENCY=str(LATENCY_S),
            FAKE_GEMINI_LOG=str(base / "calls.jsonl"),
            FAKE_GEMINI_STATE=str(base / "fake_cli_state"),
            PYTHONWARNINGS="ignore",
        ),
    }
    with running_dagster(env) as server:
        workdir = base / "operator"
        workdir.mkdir()
        yield server, {**env, "NH_WEBSERVER_URL": server.url}, workdir


def _run_id(stdout: str, server) -> str:
    url = stdout.strip().splitlines()[0]
    assert url.startswith(f"{server.url}/runs/"), stdout
    return url.rsplit("/", 1)[1]


def test_two_runs_of_one_day_the_second_waits_in_the_queue(stack):
    server, env, cwd = stack
    day = "2026-11-20"
    first = nh("run", day, "--select", "ai_ecosystem_watch", env=env, cwd=cwd)
    second = nh("run", day, "--select", "ai_ecosystem_watch", env=env, cwd=cwd)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    first_id, second_id = _run_id(first.stdout, server), _run_id(second.stdout, server)
    assert "waits in the queue (one run per day)" in second.stderr

    seen_while_first_ran = set()
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        deadline = time.monotonic() + 120
        while not instance.get_run_by_id(first_id).is_finished:
            assert time.monotonic() < deadline, "the first run did not finish"
            # The second run's status first: statuses only move forward, so if the first run is
            # still STARTED after it, the second's was read while the first ran.
            second_status = instance.get_run_by_id(second_id).status
            if instance.get_run_by_id(first_id).status == dg.DagsterRunStatus.STARTED:
                seen_while_first_ran.add(second_status)
            time.sleep(0.2)
        records = wait_for_runs(instance, [first_id, second_id])
    assert seen_while_first_ran == {dg.DagsterRunStatus.QUEUED}
    assert not overlaps(run_span(records[first_id]), run_span(records[second_id]))


def test_run_wait_then_status_json_matches_the_instance(stack):
    server, env, cwd = stack
    day = "2026-11-21"
    ran = nh("run", day, "--select", "key:ai_ecosystem_watch or key:startup_radar", "--wait", env=env, cwd=cwd)
    assert ran.returncode == 0, ran.stderr
    run_id = _run_id(ran.stdout, server)
    assert "SUCCESS" in ran.stderr  # the progress display's last line

    status = nh("status", day, "--json", env=env, cwd=cwd)
    assert status.returncode == exit_codes.RUN_FAILED  # 2 of 23 prompts: the day is incomplete
    document = json.loads(status.stdout)
    assert document["day"] == day and not document["complete"]
    by_asset = {a["asset"]: a for a in document["assets"]}
    assert set(by_asset) == set(PROMPTS)
    assert set(document["missing"]) == set(PROMPTS) - {"ai_ecosystem_watch", "startup_radar"}
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        for asset in ("ai_ecosystem_watch", "startup_radar"):
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
            ).records[0]
            meta = record.asset_materialization.metadata
            shown = by_asset[asset]
            assert shown["state"] == "materialized" and shown["run_id"] == run_id
            assert shown["path"] == meta["path"].value and Path(shown["path"]).is_file()
            assert shown["sha256"] == meta["sha256"].value
            assert shown["input_tokens"] == meta["gemini.input_tokens"].value > 0
            assert shown["output_tokens"] == meta["gemini.output_tokens"].value > 0
            assert shown["duration_s"] == meta["nh.duration_s"].value >= LATENCY_S
            assert shown["attempts"] == meta["nh.attempts"].value == 1
            assert shown["code_version"] == record.asset_materialization.tags["dagster/code_version"]
            assert shown["code_version"] == shown["current_code_version"]
    human = nh("status", day, env=env, cwd=cwd)
    assert human.returncode == exit_codes.RUN_FAILED and "incomplete (21 missing)" in human.stdout


def test_a_failed_run_exits_20_with_its_cause_in_one_line(stack):
    server, env, cwd = stack
    # novelty_filter alone, on a day whose research notes do not exist: the asset fails at once.
    proc = nh("run", "2026-11-25", "--select", "novelty_filter", "--wait", "--json", env=env, cwd=cwd)
    assert proc.returncode == exit_codes.RUN_FAILED, proc.stderr
    document = json.loads(proc.stdout)
    assert document["status"] == "FAILURE" and document["failed_steps"] == ["novelty_filter"]
    # Its research inputs are optional, but not all of them may be missing (registry ``?``).
    assert document["causes"]["novelty_filter"].startswith("novelty_filter has none of its same-day inputs")
    assert "materialize" in document["causes"]["novelty_filter"] and "Traceback" not in proc.stderr


def test_plan_calls_no_model_names_every_prompt_and_sees_a_changed_row_as_stale(stack, tmp_path):
    server, env, cwd = stack
    day = "2026-11-21"  # the previous test materialized ai_ecosystem_watch and startup_radar
    calls_log = server.dagster_home.parent / "calls.jsonl"
    calls_before = calls_log.read_text() if calls_log.exists() else ""
    # A registry whose ai_ecosystem_watch prompt was edited: its code version changes.
    text = (REPO_ROOT / "registry" / "prompts.tsv").read_text()
    original = REGISTRY.by_id("ai_ecosystem_watch").prompt.replace("\\", "\\\\").replace("\n", "\\n")
    assert text.count(original) == 1
    edited = tmp_path / "edited.tsv"
    edited.write_text(text.replace(original, original + " Also name one open question."))
    plan_env = {**env, "NH_GEMINI_CLI": "/bin/false", "NH_REGISTRY": str(edited)}

    proc = nh("plan", day, "--json", env=plan_env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert [a["asset"] for a in plan["assets"]] == [s.prompt_id for s in REGISTRY.topological_order()]
    states = {a["asset"]: a for a in plan["assets"]}
    assert states["ai_ecosystem_watch"]["state"] == "stale"
    assert "registry row changed" in states["ai_ecosystem_watch"]["reasons"][0]
    assert states["startup_radar"]["state"] == "materialized"
    assert plan["totals"]["missing"] == len(PROMPTS) - 2
    llm = [s for s in REGISTRY.prompts if s.uses_llm]
    assert len(llm) == len(PROMPTS) - 1
    # A search loop is three API requests (call, search, answer), a plain answer one.
    requests = sum(3 if "google_web_search" in s.allowed_tools else 1 for s in llm)
    assert plan["totals"]["gemini_requests"] == requests
    assert plan["totals"]["least_time_s"] == pytest.approx(requests / 50 * 60, abs=0.1)
    assert all(a["estimated_input_tokens"] > 0 for a in plan["assets"] if a["gemini_requests"])
    assert plan["calls_model"] is False
    assert (calls_log.read_text() if calls_log.exists() else "") == calls_before

    human = nh("plan", f"{day}..2026-11-22", env=plan_env, cwd=cwd)
    assert human.returncode == 0, human.stderr
    assert all(prompt in human.stdout for prompt in PROMPTS)
    assert f"Gemini requests: {2 * requests}" in human.stdout


def test_backfill_of_two_days_completes(stack):
    server, env, cwd = stack
    days = ["2026-11-23", "2026-11-24"]
    proc = nh(
        "backfill", f"{days[0]}..{days[1]}", "--select", "ai_ecosystem_watch", "--wait", env=env, cwd=cwd, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(f"{server.url}/runs/b/")
    assert "COMPLETED_SUCCESS" in proc.stderr and "2/2 asset partitions materialized" in proc.stderr
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("ai_ecosystem_watch"), asset_partitions=days), limit=10
        ).records
    assert sorted(r.partition_key for r in records) == days
