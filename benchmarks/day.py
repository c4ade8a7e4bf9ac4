"""Benchmark: orchestration overhead, wall time against the schedule's lower bound, rate-limit
adherence over a multi-day backfill, and peak memory. A script that prints figures, not a test.

    .venv/bin/python -m benchmarks.day                 # all parts, L = 5 s
    .venv/bin/python -m benchmarks.day --latency 5 --days 3 --rate 30 --parts one,backfill
    .venv/bin/python -m benchmarks.day --instance postgres   # storage and bucket on PostgreSQL

Everything runs for real: a temporary Dagster instance (SQLite, or with ``--instance postgres`` a
private PostgreSQL server holding storage and the Gemini bucket) with the repo's dagster.yaml and
pool limits, the real code location loaded by ``dagster job execute -j neurohelix_daily`` (one partition) or by
``dagster dev`` and a multi-run backfill launched through GraphQL (several days), and the fake
``gemini`` executable answering after a fixed latency L. The fake logs every call's start and end,
which the step figures are computed from (each step's phases, median and p95 across steps:
``benchmarks.step_breakdown``); the rate figures come from the requests the fake Gemini API received
through the rate gate, where the quota applies. Memory is the process tree's peak, as summed RSS and
as summed PSS, with the peak PSS of each kind of process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.lower_bound import lower_bound_s
from benchmarks.machine import DAGSTER, TreeMemory, load_average
from benchmarks.step_breakdown import day_breakdown, summary_lines
from nh_assets.registry import Registry, load_registry
from nh_assets.settings import registry_path_from_env
from nh_assets_tests.support.fakes import pipeline_env, shared_fake_api


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------


INSTANCE_ENV: dict[str, str] = {}  # set by main() for --instance postgres: NH_POSTGRES_URL


def make_env(base: Path, latency: float, rate: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        **pipeline_env(
            base,
            instance="postgres" if INSTANCE_ENV else "sqlite",
            **INSTANCE_ENV,
            NH_RATE_PER_MINUTE=str(rate),
            NH_RATE_PER_DAY=str(max(rate * 100, 1000)),
            FAKE_GEMINI_LATENCY=str(latency),
            FAKE_GEMINI_LOG=str(base / "calls.jsonl"),
            **(extra or {}),
        ),
    }
    subprocess.run([sys.executable, "-m", "nh_assets.pools", "apply"], env=env, check=True, capture_output=True)
    return env


def calls(env: dict[str, str]) -> list[dict]:
    log = Path(env["FAKE_GEMINI_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ---------------------------------------------------------------------------------------------
# Part 1, 2, 4: one partition
# ---------------------------------------------------------------------------------------------


def one_partition(latency: float, day: str, registry: Registry, extra_env: dict[str, str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="nh-bench-") as tmp:
        env = make_env(Path(tmp), latency, rate=50, extra=extra_env)
        load_before = load_average()
        started = time.monotonic()
        proc = subprocess.Popen(
            # The daily job, as the schedule runs it: the 22 prompts with their in-step checks.
            [DAGSTER, "job", "execute", "-m", "nh_assets", "-j", "neurohelix_daily",
             "--tags", json.dumps({"dagster/partition": day})],
            env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        memory = TreeMemory(proc.pid)
        memory.start()
        output, _ = proc.communicate()
        command_wall = time.monotonic() - started
        peak = memory.stop()
        load_after = load_average()
        if proc.returncode != 0:
            raise SystemExit(f"bench: materialization failed:\n{output[-3000:]}")
        breakdown = day_breakdown(env["DAGSTER_HOME"], registry, calls(env), memory.started, memory.last_seen)
        return {
            **breakdown,
            "command_wall_s": command_wall,
            "calls": len(calls(env)),
            "peak_rss_mb": peak / 2**20,
            "memory": memory,
            "load_before": load_before,
            "load_after": load_after,
        }


# ---------------------------------------------------------------------------------------------
# Part 3: a multi-day backfill under the rate limit
# ---------------------------------------------------------------------------------------------

def max_in_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def backfill(days: list[str], latency: float, rate: int, registry: Registry) -> dict:
    from nh_assets_tests.support.dagster_server import running_dagster

    with tempfile.TemporaryDirectory(prefix="nh-bench-backfill-") as tmp:
        env = make_env(Path(tmp), latency, rate=rate)
        with running_dagster(env) as server:
            # Exact per-asset ranges: with partitionNames Dagster would also target the partitions
            # downstream through the cross-day edges (the next day's novelty_filter, …).
            days_range = {"range": {"start": days[0], "end": days[-1]}}
            params = {
                "partitionsByAssets": [
                    {"assetKey": {"path": [s.prompt_id]}, "partitions": days_range} for s in registry.prompts
                ],
            }
            seen = len(shared_fake_api().requests)
            backfill_id = server.launch_backfill(params)
            started = time.monotonic()
            memory = TreeMemory(os.getpid(), root_kind="benchmark")
            memory.start()
            while True:
                status = server.backfill_status(backfill_id)
                if status != "REQUESTED":
                    break
                time.sleep(2)
            wall = time.monotonic() - started
            peak = memory.stop()
        # Measured where the quota applies: the requests the (fake) API received, through the gate.
        starts = sorted(r["time"] for r in shared_fake_api().requests[seen:])
        span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
        # Steady state excludes the first window, where a full bucket admits a burst of R at once.
        achieved = (len(starts) - 1) / span * 60.0 if span else float("nan")
        return {
            "status": status,
            "requests": len(starts),
            "wall_s": wall,
            "achieved_per_min": achieved,
            "max_in_60s": max_in_window(starts),
            "peak_rss_mb": peak / 2**20,
        }


def positive_seconds(text: str) -> float:
    """An argparse type: the schedule's lower bound divides by the latency, so it must be above 0."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a latency must be above 0 seconds (try 0.1)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.day", description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=positive_seconds, default=5.0, help="fake Gemini latency L per call, seconds")
    parser.add_argument("--days", type=int, default=3, help="days in the backfill")
    parser.add_argument("--rate", type=int, default=20, help="rate limit R per minute during the backfill")
    parser.add_argument("--backfill-latency", type=positive_seconds, default=1.0, help="L during the backfill")
    parser.add_argument("--parts", default="one,backfill", help="comma list: one, backfill")
    parser.add_argument("--start-method", default=None, help="override NH_EXECUTOR_START_METHOD for part one")
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite",
                        help="Dagster storage and Gemini bucket: SQLite files, or a private PostgreSQL server")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.instance == "postgres":
            from nh_assets_tests.support.postgres_server import dagster_url, running_postgres

            server = stack.enter_context(running_postgres())
            print(f"instance: PostgreSQL on 127.0.0.1:{server.port} (storage and Gemini bucket)")
        else:
            print("instance: SQLite files in DAGSTER_HOME (storage and Gemini bucket)")

        def fresh_database() -> None:
            if args.instance == "postgres":
                INSTANCE_ENV["NH_POSTGRES_URL"] = os.environ["NH_POSTGRES_URL"] = dagster_url(server.create_database())

        return _run_parts(args, fresh_database)


def _run_parts(args: argparse.Namespace, fresh_database) -> int:
    registry = load_registry(registry_path_from_env())
    parts = set(args.parts.split(","))
    max_processes = int(os.environ.get("NH_MAX_GEMINI_PROCESSES", "4"))

    if "one" in parts:
        fresh_database()
        extra = {"NH_EXECUTOR_START_METHOD": args.start_method} if args.start_method else None
        bounds = lower_bound_s(registry, args.latency, max_processes, 50)
        result = one_partition(args.latency, "2026-11-20", registry, extra)
        print(f"one partition, L = {args.latency:g} s, {result['steps']} steps [{result['load_before']} before, {result['load_after']} after]")
        print(f"  per-step overhead        median {result['overhead_median_s']:.2f} s, p95 {result['overhead_p95_s']:.2f} s")
        print(f"  run wall (RUN_START..SUCCESS) {result['run_wall_s']:.1f} s; whole command {result['command_wall_s']:.1f} s")
        print("  lower bound              " + ", ".join(f"{k} {v:.1f} s" for k, v in bounds.items() if k != "bound"))
        print(f"  bound {bounds['bound']:.1f} s; wall / bound = {result['run_wall_s'] / bounds['bound']:.2f}")
        for line in summary_lines(result["phases"]) + result["memory"].summary_lines():
            print(line)
        print("    (the rate gates are threads of the step processes; their memory is the steps')")
    if "backfill" in parts:
        fresh_database()
        days = [f"2026-11-{d:02d}" for d in range(10, 10 + args.days)]
        result = backfill(days, args.backfill_latency, args.rate, registry)
        print(f"backfill of {args.days} days, R = {args.rate}/min, L = {args.backfill_latency:g} s: {result['status']}")
        print(f"  requests {result['requests']} in {result['wall_s']:.0f} s")
        print(f"  achieved {result['achieved_per_min']:.1f}/min = {result['achieved_per_min'] / args.rate:.0%} of R")
        print(f"  max requests in any 60 s window {result['max_in_60s']} (limit {args.rate})")
        print(f"  peak memory (bench + dagster dev tree) {result['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
