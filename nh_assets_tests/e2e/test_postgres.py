"""PostgreSQL as the instance storage and as the shared rate-limit bucket, against a real server.

The server is Debian's PostgreSQL started privately by ``postgres_server`` (no mock). What a
multi-machine deployment relies on is checked here on one machine: Dagster's runs, event logs
and schedules in Postgres (``dagster_home/postgres/dagster.yaml``); independent processes, each
with its own ``GeminiCLIResource``, sharing one Postgres bucket; the run queue's one-run-per-day
limit holding with Postgres storage.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.rate_limit_stores import TABLE
from nh_assets.redaction import redact_url
from nh_assets.settings import SettingsError, load_settings
from nh_assets_tests.support.dagster_server import overlaps, run_span, running_dagster, wait_for_runs
from nh_assets_tests.support.fakes import gemini_config, pipeline_env, shared_fake_api
from nh_assets_tests.support.postgres_server import dagster_url

pytestmark = pytest.mark.services

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY = "2026-11-20"
BUCKET_TABLE = f"ratelimit___{TABLE}"
PROMPT = f"NEUROHELIX PROMPT: ai_ecosystem_watch\nDATE: {DAY}\nRESPONSE FORMAT: markdown\n\nSummarise."
CALL = ModelCall(model="gemini-2.5-flash", timeout_s=20)


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        return conn.execute(sql, params).fetchall()


# --- settings ------------------------------------------------------------------------------------


def test_a_postgres_url_moves_the_bucket_to_postgres_unless_told_otherwise():
    url = "postgresql+psycopg2://nh:pw@db:5432/nh"
    assert load_settings({"NH_POSTGRES_URL": url}).rate_limit_backend == "postgres"
    assert load_settings({"NH_POSTGRES_URL": url}).rate_limit_url_env == "NH_POSTGRES_URL"
    assert load_settings({"NH_POSTGRES_URL": url, "NH_RATE_LIMIT_BACKEND": "sqlite"}).rate_limit_backend == "sqlite"
    assert load_settings({}).rate_limit_backend == "sqlite"
    own = load_settings({"NH_POSTGRES_URL": url, "NH_RATE_LIMIT_POSTGRES_URL": url + "_limits"})
    assert own.rate_limit_url_env == "NH_RATE_LIMIT_POSTGRES_URL"
    with pytest.raises(SettingsError, match="NH_RATE_LIMIT_BACKEND=postgres needs a database: set NH_POSTGRES_URL"):
        load_settings({"NH_RATE_LIMIT_BACKEND": "postgres"})
    with pytest.raises(SettingsError, match="NH_RATE_LIMIT_BACKEND: .*sqlite or postgres"):
        load_settings({"NH_RATE_LIMIT_BACKEND": "redis"})
    # SQLAlchemy 2.1 would hand a bare postgresql:// URL to psycopg 3, which Dagster's storage cannot use.
    with pytest.raises(SettingsError, match=r"must start with postgresql\+psycopg2:// \(got scheme 'postgresql'\)"):
        load_settings({"NH_POSTGRES_URL": "postgresql://nh:pw@db:5432/nh"})


def test_the_bucket_url_stays_an_environment_variable_in_the_resource_config(tmp_path):
    from nh_assets.definitions import build_definitions
    from nh_assets.registry import load_registry
    from nh_assets.settings import REPO_ROOT

    env = pipeline_env(tmp_path, instance="postgres", NH_POSTGRES_URL="postgresql+psycopg2://nh:hunter22@db:5432/nh")
    defs = build_definitions(load_settings(env), load_registry(REPO_ROOT / "registry" / "prompts.tsv"))
    gemini = defs.resources["gemini"]
    assert gemini.config.rate_limit_backend == "postgres"
    # Dagster resolves the EnvVar in each step process; the UI shows the variable's name.
    assert isinstance(gemini.config.rate_limit_bucket_url, dg.EnvVar)
    assert gemini.config.rate_limit_bucket_url == "NH_POSTGRES_URL"


def test_redact_url_hides_only_the_password():
    assert redact_url("postgresql://nh:s3cret@db.internal:5432/nh") == "postgresql://nh:***@db.internal:5432/nh"
    assert redact_url("postgresql://nh@db/nh") == "postgresql://nh@db/nh"


# --- the bucket ----------------------------------------------------------------------------------


def test_an_unreachable_bucket_fails_the_call_in_one_line_without_the_password(tmp_path, fake_cli, fake_cli_env):
    from nh_assets_tests.support.dagster_server import free_port

    url = f"postgresql://nh:s3cretpw@127.0.0.1:{free_port()}/nh"
    resource = GeminiCLIResource(
        config=gemini_config(
            tmp_path, gemini_cli=str(fake_cli), gemini_transport="oneshot", rate_limit_db=str(tmp_path / "rate.sqlite"),
            workdir_root=str(tmp_path / "w"), rate_limit_backend="postgres", rate_limit_bucket_url=url,
            gemini_api_url=shared_fake_api().base_url,
        )
    )
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        with pytest.raises(GeminiFailure) as caught:
            resources.gemini.generate(context, prompt=PROMPT, call=CALL)
    message = str(caught.value)
    assert caught.value.kind is FailureKind.RATE_LIMIT_STORE and not caught.value.kind.retryable
    assert "s3cretpw" not in message and "\n" not in message
    assert "postgresql://nh:***@127.0.0.1" in message and "check NH_POSTGRES_URL" in message
    assert not fake_cli_env["log"].exists(), "the CLI ran without a rate permit"


RATE = 6
TRY_FOR_S = 3.0  # after the sixth answer: time for a seventh to show, were it let through
_SPAWN = multiprocessing.get_context("spawn")


def _call_until_stopped(url: str, cli: str, workdir: str, log: str, ready, go) -> None:
    """A worker process with its own resource instance, calling Gemini as fast as the bucket lets it."""
    os.environ["FAKE_GEMINI_LOG"] = log
    resource = GeminiCLIResource(
        config=gemini_config(
            Path(workdir), gemini_cli=cli, gemini_transport="oneshot", rate_per_minute=RATE, rate_per_day=1000,
            rate_limit_db=str(Path(workdir) / "unused.sqlite"), rate_limit_backend="postgres",
            rate_limit_bucket_url=url, workdir_root=workdir, max_gemini_processes=4,
            gemini_api_url=shared_fake_api().base_url,
        )
    )
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        ready.set()
        go.wait(60)
        while True:
            resources.gemini.generate(context, prompt=PROMPT, call=CALL)


def test_two_workers_with_their_own_resources_never_exceed_the_limit_in_any_window(tmp_path, fake_cli, postgres_url):
    """Three requests seeded 58.5 s ago (database clock) fill half the window and leave it 2.5 s
    later (the window is 61 s), so the sliding window decides: 3 calls at once, 3 more once the old
    ones leave, then none for a minute."""
    log = tmp_path / "calls.jsonl"
    go = _SPAWN.Event()
    readies = [_SPAWN.Event() for _ in range(2)]
    workers = [
        _SPAWN.Process(
            target=_call_until_stopped, args=(postgres_url, str(fake_cli), str(tmp_path / f"w{i}"), str(log), ready, go)
        )
        for i, ready in enumerate(readies)
    ]
    from nh_assets.gemini.rate_limit import SharedRateLimit
    from nh_assets.gemini.rate_limit_stores import PostgresStore

    SharedRateLimit(PostgresStore(postgres_url), RATE, 1000).close()  # creates the bucket's table
    for worker in workers:
        worker.start()
    try:
        assert all(ready.wait(60) for ready in readies), "workers did not start"
        _query(
            postgres_url,
            f"INSERT INTO {BUCKET_TABLE} (name, weight, item_timestamp) SELECT 'gemini', 1, "
            "TO_TIMESTAMP(EXTRACT(EPOCH FROM clock_timestamp()) - 58.5) FROM generate_series(1, 3) RETURNING 1",
        )
        go.set()
        # The six rate permits of these seconds come within a few (3 at once, 3 when the seeded requests
        # leave the 61 s window); the next opens a minute later. Wait for the six, then as long
        # again for any call that should not have been let through.
        deadline = time.monotonic() + 60
        while len(_answered(log)) < RATE and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(TRY_FOR_S)
    finally:
        for worker in workers:
            worker.terminate()
            worker.join(timeout=30)

    # Answered calls: the ones still waiting at a gate when their worker stopped end in an error.
    calls = _answered(log)
    assert len(calls) == RATE, f"{len(calls)} calls were answered"
    stamps = sorted(
        float(ts) for (ts,) in _query(postgres_url, f"SELECT EXTRACT(EPOCH FROM item_timestamp) FROM {BUCKET_TABLE}")
    )
    assert len(stamps) == 3 + RATE
    for i, start in enumerate(stamps):
        in_window = sum(1 for ts in stamps[i:] if ts < start + 60.0)
        assert in_window <= RATE, f"{in_window} requests within a minute of {start}"
    # Both workers drew from the one bucket: the last three requests waited for the seeded ones.
    seeded, taken = stamps[:3], stamps[3:]
    assert taken[-3] >= seeded[-1] + 60.0


def _answered(log: Path) -> list[dict]:
    """The calls the workers logged as answered; a line being written is not one yet."""
    lines = log.read_text().splitlines(keepends=True) if log.exists() else []
    return [c for c in (json.loads(line) for line in lines if line.endswith("\n")) if c["outcome"] == "ok"]


# --- Dagster on Postgres -------------------------------------------------------------------------


def _postgres_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **pipeline_env(tmp_path, instance="postgres", NH_POSTGRES_URL=dagster_url(url), **extra),
        # The forkserver's socket lives in TMPDIR; pytest's deep tmp paths exceed AF_UNIX's 108 bytes.
        "TMPDIR": tempfile.mkdtemp(prefix="nh-"),
    }


def test_a_whole_day_materializes_with_postgres_storage_and_bucket(tmp_path, postgres_url, registry, monkeypatch):
    env = _postgres_env(tmp_path, postgres_url)
    monkeypatch.setenv("NH_POSTGRES_URL", env["NH_POSTGRES_URL"])  # read by this process's instance too
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", "*", "--partition", DAY],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    home = Path(env["DAGSTER_HOME"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        for spec in registry.prompts:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(spec.prompt_id), asset_partitions=[DAY]), limit=1
            ).records
            assert records, f"{spec.prompt_id} has no materialization for {DAY}"
            assert (Path(env["NH_DATA_ROOT"]) / spec.output_path(DAY)).is_file()
    # Everything went to the database: no SQLite file beside dagster.yaml (only compute logs).
    assert sorted(p.name for p in home.rglob("*") if p.suffix in {".db", ".sqlite"}) == []
    llm_prompts = sum(1 for spec in registry.prompts if spec.uses_llm)
    assert _query(postgres_url, f"SELECT COUNT(*) FROM {BUCKET_TABLE}") == [(llm_prompts,)]
    (materialized,) = _query(
        postgres_url,
        "SELECT COUNT(DISTINCT asset_key) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'",
    )
    assert materialized[0] >= len(registry.prompts)
    assert "postgresql://" not in result.stdout + result.stderr


def test_a_second_run_of_the_same_day_waits_in_the_queue_with_postgres_storage(tmp_path, postgres_url, monkeypatch):
    # The first call of each day waits for a call of the other day: days allowed to run together do.
    (tmp_path / "rendezvous").mkdir()
    env = _postgres_env(
        tmp_path, postgres_url, FAKE_GEMINI_LATENCY="3", FAKE_GEMINI_RENDEZVOUS=f"{tmp_path / 'rendezvous'}:2",
        PYTHONWARNINGS="ignore",
    )
    monkeypatch.setenv("NH_POSTGRES_URL", env["NH_POSTGRES_URL"])
    asset = ["ai_ecosystem_watch"]
    with running_dagster(env) as server, dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        first, second = server.submit_daily("2026-11-10", asset), server.submit_daily("2026-11-10", asset)
        other = server.submit_daily("2026-11-11", asset)
        seen_queued_behind = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = {rid: instance.get_run_by_id(rid).status for rid in (first, second)}
            running = [rid for rid, status in statuses.items() if status == dg.DagsterRunStatus.STARTED]
            if running:
                waiting = second if running == [first] else first
                seen_queued_behind |= statuses[waiting] == dg.DagsterRunStatus.QUEUED
            if all(instance.get_run_by_id(r).is_finished for r in (first, second, other)):
                break
            time.sleep(0.2)
        records = wait_for_runs(instance, [first, second, other])
    spans = {rid: run_span(record) for rid, record in records.items()}
    assert seen_queued_behind, "no run of 2026-11-10 was seen queued while the other executed"
    assert not overlaps(spans[first], spans[second]), "two runs of the same day ran at once"
    assert overlaps(spans[other], spans[first]) or overlaps(spans[other], spans[second]), "days did not overlap"


def test_preflight_reads_the_postgres_bucket_and_names_an_unreachable_one(postgres_url):
    from nh_assets.operations.preflight import Level, check_rate_limit
    from nh_assets.gemini.rate_limit_stores import PostgresStore
    from nh_assets_tests.support.dagster_server import free_port

    healthy = check_rate_limit(PostgresStore(postgres_url), 50, 1000)
    assert healthy.level is Level.OK and "0/50 in the last minute" in healthy.detail
    down = check_rate_limit(PostgresStore(f"postgresql+psycopg2://nh:pw0rd9@127.0.0.1:{free_port()}/nh"), 50, 1000)
    assert down.level is Level.FAIL and "pw0rd9" not in down.detail
    assert "cannot open the shared Gemini rate-limit bucket at postgresql+psycopg2://nh:***@127.0.0.1" in down.detail
