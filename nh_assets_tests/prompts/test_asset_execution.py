"""One prompt asset through Dagster with the fake CLI: retries, failures, atomicity, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.artifacts import ArtifactWriteError, write_atomic
from nh_assets.data_layout import DataLayoutResource
from nh_assets.definitions import gemini_resource
from nh_assets.prompts.definitions import build_prompt_graph

pytestmark = pytest.mark.fast

DAY = "2026-11-20"
ASSET = "ai_ecosystem_watch"  # no upstream, max_retries 3 in the shipped registry


def _materialize(settings, registry, instance, **gemini_options):
    """The one asset, alone, with the resources the code location would give it."""
    (asset,) = [a for a in build_prompt_graph(settings, registry).assets if a.key == dg.AssetKey(ASSET)]
    gemini = gemini_resource(settings, retry_base_s=0.05, rate_limit_backoff_s=0.05, **gemini_options)
    return dg.materialize(
        [asset],
        partition_key=DAY,
        instance=instance,
        resources={"gemini": gemini, "layout": DataLayoutResource(root=str(settings.data_root))},
        raise_on_error=False,
    )


def _events(result, event_type: dg.DagsterEventType):
    return [e for e in result.all_events if e.event_type == event_type]


def _output(settings) -> Path:
    return settings.data_root / f"outputs/daily/{DAY}/{ASSET}.md"


def test_transient_failures_are_retried_as_visible_step_retries(settings, registry, instance, fake_cli_env, monkeypatch):
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "fail_n")
    monkeypatch.setenv("FAKE_GEMINI_FAIL_N", "2")
    result = _materialize(settings, registry, instance)
    assert result.success
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 2
    (materialization,) = result.asset_materializations_for_node(ASSET)
    assert materialization.metadata["nh.attempts"].value == 3


def test_auth_failure_fails_at_once_with_the_fix(settings, registry, instance, fake_cli_env, monkeypatch):
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "auth")
    result = _materialize(settings, registry, instance)
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = _events(result, dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.message
    assert "Gemini auth" in message and "export GEMINI_API_KEY" in message
    assert not _output(settings).exists()


def test_a_failed_run_keeps_the_previous_good_output(settings, registry, instance, fake_cli_env, monkeypatch):
    assert _materialize(settings, registry, instance).success
    good = _output(settings).read_bytes()
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "invalid_json")
    result = _materialize(settings, registry, instance)
    assert not result.success
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 3
    assert _output(settings).read_bytes() == good
    assert [p.name for p in _output(settings).parent.iterdir()] == [f"{ASSET}.md"]


def test_daily_cap_fails_clearly_without_calling_the_cli(settings, registry, instance, fake_cli_env, monkeypatch):
    import sqlite3
    import time

    from nh_assets.gemini.rate_limit import SharedRateLimit
    from nh_assets.gemini.rate_limit_stores import SQLiteStore

    # Two requests made earlier today (outside the minute window) by some other process.
    SharedRateLimit(SQLiteStore(settings.rate_limit_db), per_minute=2, per_day=3).close()
    earlier = int(time.time() * 1000) - 10 * 60 * 1000
    with sqlite3.connect(settings.rate_limit_db) as conn:
        conn.executemany("INSERT INTO gemini_requests (name, item_timestamp) VALUES ('gemini', ?)", [(earlier,), (earlier + 1,)])
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "ok")
    first = _materialize(settings, registry, instance, rate_per_minute=2, rate_per_day=3)
    assert first.success  # the third request of the day
    second = _materialize(settings, registry, instance, rate_per_minute=2, rate_per_day=3)
    assert not second.success
    (failure,) = _events(second, dg.DagsterEventType.STEP_FAILURE)
    assert "daily cap of 3 requests is used up" in failure.step_failure_data.error.message
    assert len(fake_cli_env["log"].read_text().splitlines()) == 1


def test_secrets_never_reach_the_event_log(settings, registry, instance, fake_cli_env, monkeypatch):
    secret = "AIzaSy-event-log-secret-987"
    monkeypatch.setenv("GEMINI_API_KEY", secret)
    monkeypatch.setenv("FAKE_GEMINI_SCENARIO", "leak_secret")
    result = _materialize(settings, registry, instance)
    assert not result.success
    logged = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))
    assert "boom with key ***" in logged
    assert secret not in logged


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "report.md"
    write_atomic(target, b"good")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    # One line with the cause (a dg.Failure, so the step shows it, not a traceback).
    with pytest.raises(ArtifactWriteError, match="disk full"):
        write_atomic(target, b"half-written replacement")
    assert target.read_bytes() == b"good"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]
