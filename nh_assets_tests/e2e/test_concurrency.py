"""Concurrency limits under a real ``dagster dev`` (webserver + daemon) with the fake CLI: the
one-run-per-day queue, the class pools, the machine-wide process cap, the order of a multi-day
backfill, and that a terminated run leaves no CLI behind holding a process permit.

Judged from the fake CLI's per-call log (start, end, pid) and the instance's run records, never
from mocks. The limits themselves, raced by bare processes, are in ``gemini/test_limits_across_processes.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from itertools import combinations

import dagster as dg
import pytest

from nh_assets.registry import load_registry
from nh_assets.gemini.process_permits import ProcessPermits
from nh_assets.process_stat import process_stat
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.dagster_server import DagsterServer, overlaps, run_span, running_dagster, wait_for_runs
from nh_assets_tests.support.fakes import pipeline_env
from nh_assets_tests.support.intervals import max_open

pytestmark = pytest.mark.dagster

# --- through a real dagster dev ------------------------------------------------------------------

LATENCY_S = 2.0
MAX_PROCESSES = 2
HANGS = "meta_project_explorer"  # the one prompt the fake CLI hangs on; no other test runs it
SEQUENTIAL = {
    spec.prompt_id
    for spec in load_registry(REPO_ROOT / "registry" / "prompts.tsv").prompts
    if spec.concurrency_class == "sequential"
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One ``dagster dev`` for the module: the fake CLI answers after LATENCY_S (and hangs for
    HANGS), and at most MAX_PROCESSES CLI processes run at once, machine-wide."""
    base = tmp_path_factory.mktemp("concurrency")
    env = {
        **os.environ,
        **pipeline_env(
            base,
            NH_MAX_GEMINI_PROCESSES=str(MAX_PROCESSES),
            FAKE_GEMINI_LATENCY=str(LATENCY_S),
            FAKE_GEMINI_LOG=str(base / "calls.jsonl"),
            FAKE_GEMINI_STATE=str(base / "fake_cli_state"),
            FAKE_GEMINI_SCENARIO="hang",
            FAKE_GEMINI_ONLY_FOR=HANGS,
            FAKE_GEMINI_RENDEZVOUS=f"{base / 'rendezvous'}:2",  # only while a test makes the folder
            PYTHONWARNINGS="ignore",
        ),
    }
    with running_dagster(env) as srv:
        yield srv


def _calls(server: DagsterServer, days: set[str]) -> list[dict]:
    log = server.dagster_home.parent / "calls.jsonl"
    calls = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        entry["day"] = next(l.split(":", 1)[1].strip() for l in entry["prompt"].splitlines() if l.startswith("DATE:"))
        if entry["day"] in days:
            calls.append(entry)
    return calls


def test_runs_of_one_day_queue_while_different_days_run_together(server):
    same_day, other_day = "2026-11-10", "2026-11-11"
    asset = ["ai_ecosystem_watch"]
    # The first call of each day waits for a call of the other day, so days allowed to run
    # together do, however the machine is loaded.
    rendezvous = server.dagster_home.parent / "rendezvous"
    rendezvous.mkdir()
    try:
        first, second = server.submit_daily(same_day, asset), server.submit_daily(same_day, asset)
        other = server.submit_daily(other_day, asset)
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            records = wait_for_runs(instance, [first, second, other])
    finally:
        shutil.rmtree(rendezvous)
    spans = {rid: run_span(record) for rid, record in records.items()}
    assert not overlaps(spans[first], spans[second]), "two runs of the same day ran at once"
    assert overlaps(spans[other], spans[first]) or overlaps(spans[other], spans[second]), "days did not overlap"


def test_pool_of_one_serializes_sequential_steps_across_runs_and_processes_stay_capped(server):
    days = ["2026-11-12", "2026-11-13"]
    # novelty_filter and continuity_builder are `sequential`; the four research inputs are not.
    research = ["ai_ecosystem_watch", "emergent_open_source", "startup_radar", "developer_tools"]
    assets = [*research, "novelty_filter", "continuity_builder"]
    run_ids = [server.submit_daily(day, assets) for day in days]
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        records = wait_for_runs(instance, run_ids)
        materialized = [
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=days), limit=10
            ).records
            for asset in assets
        ]
    assert overlaps(run_span(records[run_ids[0]]), run_span(records[run_ids[1]])), "the two runs did not run together"
    calls = _calls(server, set(days))
    assert sorted((c["prompt_id"], c["day"]) for c in calls) == sorted((a, d) for a in assets for d in days)
    sequential = [(c["start"], c["end"]) for c in calls if c["prompt_id"] in SEQUENTIAL]
    assert len(sequential) == 4
    for a, b in combinations(sequential, 2):
        assert not overlaps(a, b), f"two `sequential` calls overlapped: {a} {b}"
    # The machine-wide cap holds across both runs' step processes.
    assert max_open([(c["start"], c["end"]) for c in calls]) <= MAX_PROCESSES
    waits = [r.asset_materialization.metadata["gemini.process_slot_wait_s"].value for rs in materialized for r in rs]
    assert len(waits) == len(assets) * len(days) and all(w >= 0 for w in waits)


BACKFILL_DAYS = ["2026-11-14", "2026-11-15"]
_BACKFILL_PREVIEW = """
query($params: AssetBackfillPreviewParams!) {
  assetBackfillPreview(params: $params) { assetKey { path } partitions { ranges { start end } } }
}"""


BACKFILLED = ["concept_synthesizer", "novelty_filter"]  # novelty_filter(d) needs concept_synthesizer(d-1)


def test_backfill_by_partition_names_shifts_novelty_filter_a_day_late(server):
    """Why backfills name exact per-asset ranges: given ``partitionNames``, Dagster applies them to
    the selection's roots only and maps them downstream, so across the @-1 dependency
    novelty_filter's target becomes the day after each named day (a UI range backfill does this)."""
    preview = server.graphql(
        _BACKFILL_PREVIEW,
        {"params": {"partitionNames": BACKFILL_DAYS, "assetSelection": [{"path": [a]} for a in BACKFILLED]}},
    )["assetBackfillPreview"]
    targets = {tuple(p["assetKey"]["path"]): p["partitions"]["ranges"] for p in preview}
    assert targets[("concept_synthesizer",)] == [{"start": "2026-11-14", "end": "2026-11-15"}]
    assert targets[("novelty_filter",)] == [{"start": "2026-11-15", "end": "2026-11-16"}]


def test_multi_run_backfill_runs_novelty_filter_only_after_yesterdays_concepts(server, registry):
    """Dagster's default (multi-run) asset backfill of concept_synthesizer and novelty_filter for two
    days, with exact per-asset ranges (``partitionsByAssets``). Their same-day research inputs are
    written beforehand, so the only thing ordering the two days' runs is the @-1 dependency."""
    data = server.dagster_home.parent / "data"
    inputs = {d.prompt_id for a in BACKFILLED for d in registry.by_id(a).depends_on if d.is_same_day} - {*BACKFILLED}
    assert len(inputs) == 10
    for prompt_id, day in ((p, d) for p in inputs for d in BACKFILL_DAYS):
        path = data / registry.by_id(prompt_id).output_path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {prompt_id} for {day}\n\nResearch notes.\n")
    ranges = {"range": {"start": BACKFILL_DAYS[0], "end": BACKFILL_DAYS[-1]}}
    params = {"partitionsByAssets": [{"assetKey": {"path": [a]}, "partitions": ranges} for a in BACKFILLED]}
    backfill_id = server.launch_backfill(params)
    deadline = time.monotonic() + 240
    while True:
        status = server.backfill_status(backfill_id)
        if status != "REQUESTED":
            break
        assert time.monotonic() < deadline, "backfill did not finish"
        time.sleep(1)
    assert status == "COMPLETED_SUCCESS"

    made = _calls(server, {*BACKFILL_DAYS, "2026-11-16"})
    # Each asset once per day of the range, nothing for the day after it.
    assert sorted((c["prompt_id"], c["day"]) for c in made) == sorted((a, d) for a in BACKFILLED for d in BACKFILL_DAYS)
    calls = {(c["prompt_id"], c["day"]): c for c in made}
    concepts_day1 = calls[("concept_synthesizer", BACKFILL_DAYS[0])]
    novelty_day2 = calls[("novelty_filter", BACKFILL_DAYS[1])]
    assert novelty_day2["start"] >= concepts_day1["end"]
    assert f"concept_synthesizer for {BACKFILL_DAYS[0]}" in novelty_day2["prompt"]


def _alive(pid: int) -> bool:
    stat = process_stat(pid)
    return stat is not None and not stat.exited


def test_terminating_a_run_kills_its_cli_and_frees_the_process_permit(server):
    pids = server.dagster_home.parent / "fake_cli_state" / "hang_pids"
    run_id = server.submit_daily("2026-11-17", [HANGS])
    deadline = time.monotonic() + 90
    while not pids.exists():
        assert time.monotonic() < deadline, "the hanging CLI never started"
        time.sleep(0.2)
    cli_pid, its_child = (int(pid) for pid in pids.read_text().split())
    assert _alive(cli_pid) and _alive(its_child)
    server.graphql_client().terminate_run(run_id)
    deadline = time.monotonic() + 60
    while _alive(cli_pid) or _alive(its_child):
        assert time.monotonic() < deadline, "the CLI outlived its terminated run"
        time.sleep(0.2)
    # Every process permit is free again: none stays held by an orphaned CLI.
    permits = ProcessPermits(server.dagster_home / "gemini_process_permits", MAX_PROCESSES)
    held = [permits.acquire(max_wait_s=10) for _ in range(MAX_PROCESSES)]
    for permit in held:
        permits.release(permit)
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        deadline = time.monotonic() + 60
        while not (run := instance.get_run_by_id(run_id)).is_finished:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert run.status == dg.DagsterRunStatus.CANCELED
