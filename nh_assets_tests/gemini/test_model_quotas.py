"""Each model's declared quota: the file, the per-model buckets, the day's budget and preflight (in-process)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import datetime, timezone

import pytest

from nh_assets.gemini.rate_gate import GateRefusal
from nh_assets.gemini.day_budget import WEB_SEARCH_MODEL, day_budget, requests_by_model
from nh_assets.gemini.failures import FailureKind
from nh_assets.gemini.model_quotas import ModelBuckets, model_table
from nh_assets.gemini.service_memory import SPENT, SQLiteMemory, memory_path
from nh_assets.operations.preflight import Level, check_day_fits
from nh_assets.registry import RegistryError
from nh_assets.registry.quotas import ModelQuota, load_quotas, quotas_path
from nh_assets.settings import REPO_ROOT, load_settings

HEADER = "model\tper_minute\tper_day\ttier\n"


@pytest.mark.fast
def test_the_shipped_quotas_cover_every_model_a_day_asks(registry):
    quotas = load_quotas(quotas_path(registry.path))
    need = requests_by_model(registry.prompts)
    # The day the issue measured (30 on flash, 1 on pro, 10 on the CLI's web-search model), and
    # the morning brief's one request on flash.
    assert need == {"gemini-2.5-flash": 31, "gemini-2.5-pro": 1, WEB_SEARCH_MODEL: 10}
    assert set(need) <= set(quotas)


@pytest.mark.fast
def test_a_bad_quotas_file_names_every_problem_with_its_place(tmp_path):
    path = tmp_path / "quotas.tsv"
    path.write_text(
        "# comment\n" + HEADER
        + "gpt-4o\t10\t20\tx\n"
        + "gemini-2.5-flash\tten\t20\tfree\n"
        + "gemini-2.5-pro\t50\t5\tswapped\n"
        + "gemini-2.5-flash-lite\t15\t1000\tfree\n"
        + "gemini-2.5-flash-lite\t15\t1000\tagain\n"
    )
    with pytest.raises(RegistryError) as caught:
        load_quotas(path)
    problems = caught.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{path}:3:model", f"{path}:4:per_minute", f"{path}:5:per_day", f"{path}:7:model",
    ]
    assert all(" — " in p for p in problems)


@pytest.mark.fast
def test_no_file_means_no_per_model_limits(tmp_path):
    assert load_quotas(tmp_path / "quotas.tsv") == {}


@pytest.mark.fast
def test_a_models_declared_day_is_refused_as_quota_spent_and_other_models_go_on(tmp_path):
    db = tmp_path / "b.sqlite"
    buckets = ModelBuckets({"gemini-2.5-flash": (2, 3)}, backend="sqlite", sqlite_path=db, postgres_url="")
    other = ModelBuckets({"gemini-2.5-flash": (2, 3)}, backend="sqlite", sqlite_path=db, postgres_url="")
    try:
        other.take("gemini-2.5-flash", print)  # another process, the same shared count
        # Two more requests earlier today (two minutes ago), so the minute window stays open.
        with sqlite3.connect(db) as conn:
            earlier = int(time.time() * 1000) - 120_000
            conn.executemany(
                f"INSERT INTO '{model_table('gemini-2.5-flash')}' (name, item_timestamp) VALUES (?, ?)",
                [("gemini", earlier), ("gemini", earlier)],
            )
        conn.close()
        with pytest.raises(GateRefusal) as refused:
            buckets.take("gemini-2.5-flash", print)
        assert refused.value.kind is FailureKind.QUOTA_SPENT and "3 requests a day" in str(refused.value)
        assert buckets.take("gemini-2.5-pro", print) == 0.0  # no declared quota: only the global bucket
        assert other.used_today("gemini-2.5-flash") == 3
    finally:
        buckets.close()
        other.close()


@pytest.mark.fast
def test_the_days_budget_sets_need_against_what_is_left(tmp_path):
    db = tmp_path / "gemini_rate_limit.sqlite"
    quotas = {"gemini-2.5-flash": ModelQuota("gemini-2.5-flash", 10, 20), "gemini-2.5-pro": ModelQuota("gemini-2.5-pro", 5, 100)}
    need = {"gemini-2.5-flash": 30, "gemini-2.5-pro": 1, WEB_SEARCH_MODEL: 10}
    fresh = day_budget(need, quotas, backend="sqlite", rate_limit_db=db, postgres_url="")
    assert not db.exists()  # read, never created
    by_model = {b.model: b for b in fresh}
    assert by_model["gemini-2.5-flash"].left == 20 and not by_model["gemini-2.5-flash"].fits
    assert by_model["gemini-2.5-pro"].fits and by_model[WEB_SEARCH_MODEL].left is None

    buckets = ModelBuckets({"gemini-2.5-pro": (5, 100)}, backend="sqlite", sqlite_path=db, postgres_url="")
    buckets.take("gemini-2.5-pro", print)
    buckets.close()
    reset = datetime(2099, 1, 1, 8, tzinfo=timezone.utc)
    SQLiteMemory(memory_path(db)).remember(SPENT, "gemini-2.5-flash", reset.timestamp(), "spent")
    later = {b.model: b for b in day_budget(need, quotas, backend="sqlite", rate_limit_db=db, postgres_url="")}
    assert later["gemini-2.5-pro"].used_today == 1 and later["gemini-2.5-pro"].left == 99
    assert later["gemini-2.5-flash"].left == 0 and "spent until 2099-01-01 08:00 UTC" in later["gemini-2.5-flash"].describe()


@pytest.mark.fast
def test_preflight_warns_when_a_free_tier_day_cannot_fit(tmp_path, settings_env):
    registry = tmp_path / "registry" / "prompts.tsv"
    registry.parent.mkdir()
    shutil.copy(REPO_ROOT / "registry" / "prompts.tsv", registry)
    settings = load_settings(settings_env)
    assert check_day_fits(registry, settings, "").level is Level.OK  # no quotas file: nothing to exceed
    quotas_path(registry).write_text(HEADER + "gemini-2.5-flash\t10\t20\tfree\ngemini-2.5-pro\t5\t100\tfree\n")
    verdict = check_day_fits(registry, settings, "")
    assert verdict.level is Level.WARN
    assert "gemini-2.5-flash: 31 request(s) of 20/day" in verdict.detail and "fallback_model" in verdict.detail
    assert "gemini-2.5-pro" not in verdict.detail.split(" — ")[0]
    quotas_path(registry).write_text(HEADER + "gemini-2.5-flash\tx\t20\tfree\n")
    assert check_day_fits(registry, settings, "").level is Level.FAIL


@pytest.mark.services
def test_the_memory_and_a_models_bucket_live_in_postgres_for_every_machine(postgres_url):
    from nh_assets.gemini.service_memory import PostgresMemory

    one, other = PostgresMemory(postgres_url), PostgresMemory(postgres_url)  # two machines' views
    far = datetime(2099, 1, 1, tzinfo=timezone.utc).timestamp()
    assert one.remember(SPENT, "gemini-2.5-flash", far, "first cause")
    assert not other.remember(SPENT, "gemini-2.5-flash", far, "second cause")
    assert other.recall(SPENT, "gemini-2.5-flash") == ("first cause", far)
    ((model, cause, until, since),) = other.recorded_since(SPENT, 0.0)
    assert (model, cause, until) == ("gemini-2.5-flash", "first cause", far)
    assert other.recorded_since(SPENT, since) == []  # an alert sensor's cursor moves past it

    buckets = ModelBuckets({"gemini-2.5-pro": (5, 100)}, backend="postgres", sqlite_path="unused.sqlite", postgres_url=postgres_url)
    try:
        buckets.take("gemini-2.5-pro", print)
        assert buckets.used_today("gemini-2.5-pro") == 1
    finally:
        buckets.close()


@pytest.mark.services
def test_steps_that_first_meet_the_postgres_memory_at_once_all_get_it(postgres_url):
    """A day's first steps open the memory together on a database that does not have it yet: each
    must get it, none the catalog's UniqueViolation of two concurrent CREATE TABLEs."""
    import threading

    from nh_assets.gemini.service_memory import PostgresMemory

    start, errors = threading.Barrier(8), []

    def first_look() -> None:
        memory = PostgresMemory(postgres_url)
        start.wait()
        try:
            memory.recall(SPENT, "gemini-2.5-flash")
        except Exception as exc:  # noqa: BLE001 - the assertion names what failed
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=first_look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
