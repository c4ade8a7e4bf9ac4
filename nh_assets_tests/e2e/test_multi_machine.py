"""The multi-machine deployment (deploy/celery/): its config files checked against Dagster's own
schemas, and the deployment run for real on this machine with every part a separate process.

What runs here: PostgreSQL (storage and the Gemini bucket) and Redis (the Celery broker), both
Debian's servers; two Celery workers started by ``dagster-celery worker start`` with the repo's
worker config, each with its own DAGSTER_HOME, working directories and process permits, as two
machines would have; and the daily job submitted from a third process with ``NH_EXECUTOR=celery``.
What is only validated: systemd units and the example environment file (nothing here runs
systemd), and distinct hosts (the workers share one kernel and, as over NFS, one data root).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from nh_assets.settings import REPO_ROOT, SettingsError, load_settings
from nh_assets_tests.support.dagster_server import stop_process_group
from nh_assets_tests.support.fakes import INSTANCE_YAML, ONESHOT_FOR_THE_FAKE_CLI, install_fake, shared_fake_api
from nh_assets_tests.support.postgres_server import dagster_url
from nh_assets_tests.support.redis_server import running_redis

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent
DEPLOY = REPO_ROOT / "deploy" / "celery"
WORKER_YAML = DEPLOY / "celery_worker.yaml"
DAY = "2026-11-20"


# --- the config files against Dagster's schemas --------------------------------------------------


@pytest.mark.parametrize("instance", ["sqlite", "postgres"])
def test_instance_yaml_files_validate_against_dagsters_instance_schema(instance):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load(INSTANCE_YAML[instance].read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [error.message for error in result.errors]
    if instance == "postgres":
        from dagster_postgres import PostgresEventLogStorage

        storage = config["storage"]["postgres"]
        checked = validate_config(PostgresEventLogStorage.config_type(), storage)
        assert checked.success, [error.message for error in checked.errors]
        assert storage["postgres_url"] == {"env": "NH_POSTGRES_URL"}  # never a literal password


def test_worker_yaml_validates_against_the_celery_executor_schema(monkeypatch):
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("NH_CELERY_BROKER", "redis://broker.internal:6379/0")
    monkeypatch.setenv("NH_CELERY_BACKEND", "redis://broker.internal:6379/0")
    config = get_validated_config(str(WORKER_YAML))
    assert config["broker"] == "redis://broker.internal:6379/0"
    assert config["config_source"]["worker_prefetch_multiplier"] == 1


def test_the_example_environment_selects_postgres_celery_and_a_shared_bucket():
    lines = (DEPLOY / "nh_assets.env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    settings = load_settings(env)
    assert settings.executor == "celery" and settings.rate_limit_backend == "postgres"
    assert env["DAGSTER_HOME"].endswith("dagster_home/postgres")
    unit = (DEPLOY / "nh-assets-celery-worker.service").read_text()
    assert "-y /opt/nh_assets/deploy/celery/celery_worker.yaml" in unit and "EnvironmentFile=/etc/nh_assets.env" in unit


def test_celery_without_a_broker_is_a_clear_settings_error():
    with pytest.raises(SettingsError, match="NH_EXECUTOR=celery needs the workers' broker: set NH_CELERY_BROKER"):
        load_settings({"NH_EXECUTOR": "celery"})


def test_the_code_location_uses_the_celery_executor_when_asked(tmp_path):
    from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
    from nh_assets.registry import load_registry

    settings = load_settings({
        "DAGSTER_HOME": str(tmp_path), "NH_EXECUTOR": "celery",
        "NH_CELERY_BROKER": "redis://b:6379/0", "NH_CELERY_BACKEND": "redis://b:6379/0",
    })
    defs = build_definitions(settings, load_registry(REPO_ROOT / "registry" / "prompts.tsv"))
    assert defs.resolve_job_def(DAILY_JOB_NAME).executor_def.name == "celery"


# --- the deployment, run ---------------------------------------------------------------------------


@contextlib.contextmanager
def _worker(name: str, env: dict[str, str], log: Path):
    """``dagster-celery worker start`` as the systemd unit runs it, in its own process group."""
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(WORKER_YAML),
             "-n", name, "--", "--concurrency=2"],
            env=env, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_process_group(proc)


def _wait_for_workers(
    env: dict[str, str], names: list[str], workers: list, logs: list[Path], timeout_s: float = 120
) -> None:
    from celery import Celery

    app = Celery(broker=env["NH_CELERY_BROKER"], backend=env["NH_CELERY_BACKEND"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and all(worker.poll() is None for worker in workers):
        replies = app.control.ping(timeout=1.0) or []
        seen = {host.split("@", 1)[0] for reply in replies for host in reply}
        if set(names) <= seen:
            return
        time.sleep(1)
    raise AssertionError("workers did not answer: " + " | ".join(log.read_text()[-1500:] for log in logs))


def test_the_daily_job_runs_across_two_celery_workers_sharing_postgres(tmp_path, postgres_url, registry, monkeypatch):
    url = dagster_url(postgres_url)
    data_root = tmp_path / "shared_data"  # what NFS would be across machines
    calls = tmp_path / "calls.jsonl"

    def machine(name: str) -> dict[str, str]:
        home = tmp_path / name / "dagster_home"
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(INSTANCE_YAML["postgres"].read_text())
        return {
            **os.environ,
            # `dagster-celery worker start` execs `celery` from PATH, as the systemd unit sets it.
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "DAGSTER_HOME": str(home),
            "NH_POSTGRES_URL": url,
            "NH_EXECUTOR": "celery",
            "NH_DATA_ROOT": str(data_root),
            "NH_GEMINI_CLI": str(install_fake(tmp_path / name / "bin" / "gemini")),
            **ONESHOT_FOR_THE_FAKE_CLI,
            "NH_PARTITION_START": "2026-11-01",
            "NH_TIMEZONE": "UTC",
            "NH_DEMO": "0",
            # Every machine's rate gate forwards to one fake Gemini API, as all would to Google.
            "NH_GEMINI_API_URL": shared_fake_api().base_url,
            "FAKE_GEMINI_LOG": str(calls),
            "FAKE_GEMINI_LATENCY": "0.5",
            "TMPDIR": tempfile.mkdtemp(prefix="nh-"),
            "PYTHONWARNINGS": "ignore",
        }

    with running_redis() as broker:
        envs = {name: {**machine(name), "NH_CELERY_BROKER": broker, "NH_CELERY_BACKEND": broker}
                for name in ("control", "machine-a", "machine-b")}
        subprocess.run([sys.executable, "-m", "nh_assets.pools", "apply"], env=envs["control"], check=True,
                       capture_output=True, timeout=120)
        logs = [tmp_path / f"{name}.log" for name in ("machine-a", "machine-b")]
        with (
            _worker("machine-a", envs["machine-a"], logs[0]) as a,
            _worker("machine-b", envs["machine-b"], logs[1]) as b,
        ):
            _wait_for_workers(envs["control"], ["machine-a", "machine-b"], [a, b], logs)
            result = subprocess.run(
                [str(BIN / "dagster"), "job", "execute", "-m", "nh_assets", "-j", "neurohelix_daily",
                 "--tags", json.dumps({"dagster/partition": DAY})],
                env=envs["control"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
            )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs[0].read_text()[-2000:]

    monkeypatch.setenv("NH_POSTGRES_URL", url)  # read by this process's instance too
    with dg.DagsterInstance.from_config(envs["control"]["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_run_records()
        assert run.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        hosts: dict[str, str] = {}
        for entry in instance.all_logs(run.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            metadata = entry.dagster_event.engine_event_data.metadata
            if "Celery worker" in metadata:
                hosts[entry.step_key] = metadata["Celery worker"].value.split("@", 1)[0]
        for spec in registry.prompts:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(spec.prompt_id), asset_partitions=[DAY]), limit=1
            ).records
            assert records, f"{spec.prompt_id} was not materialized"
    # Every step ran on a worker, and both machines took part.
    assert set(hosts) == {spec.prompt_id for spec in registry.prompts}
    assert set(hosts.values()) == {"machine-a", "machine-b"}, hosts
    # Each Gemini call was counted once in the one bucket every machine shares.
    llm = sum(1 for spec in registry.prompts if spec.uses_llm)
    entries = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(entries) == llm
    # The pool of the sequential class (limit 1) held across machines: those calls never overlap.
    sequential = {s.prompt_id for s in registry.prompts if s.concurrency_class == "sequential" and s.uses_llm}
    spans = sorted((c["start"], c["end"]) for c in entries if c["prompt_id"] in sequential)
    assert len(spans) == len(sequential) > 1
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ratelimit___gemini_requests").fetchone()[0] == llm
