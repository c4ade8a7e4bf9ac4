"""Benchmark: one day's footprint for each way of running it, side by side in one invocation:
wall time against the schedule's lower bound, the per-step overhead and its phases, peak memory.

    .venv/bin/python -m benchmarks.footprint                                  # L = 5 s; old nh if NH_OLD_NH is set
    .venv/bin/python -m benchmarks.footprint --latency 5 --old-nh /tmp/old-nh
    .venv/bin/python -m benchmarks.footprint --parts oneshot,acp --latency 0.3   # the suite's, on 2 prompts

A script that prints figures, not a test. Its parts run one after the other at the same L, each
with the machine's load average before and after it (two cores, often shared: a figure without
its load cannot be compared):

- **one-shot**: the daily job through ``dagster job execute`` with the fake one-shot CLI
  answering after L (``benchmarks.day.one_partition``); the model calls from the fake CLI's log;
- **warm CLI**: the same job with the real CLI (0.61.0) through the warm CLI service ("acp")
  against the project's fake Gemini API answering after L (``benchmarks.warm_cli.one_day``); the
  model calls from the fake API's request log (a step's first request to its last answer). This
  process is a child subreaper, so the service, which detaches from the step that starts it, and
  its CLIs stay in the measured tree;
- **old nh**: the pre-Dagster ``nh run`` of hopchouinard/NeuroHelix with the same fake one-shot
  CLI (``benchmarks.old_nh``), when a checkout of it is given by ``--old-nh PATH`` or ``NH_OLD_NH``.
  Its code is not this project's and is not in this repository; extract it from a mirror of that
  repository (``git clone --mirror`` of it, or the search tool's ``fetch``), and add typer, which
  this venv lacks:

      OLD=$(mktemp -d /tmp/old-nh.XXXXXX) && git --git-dir=MIRROR archive 23e4e0e orchestrator | tar -x -C "$OLD" \\
        && .venv/bin/pip install --quiet --target "$OLD/site-packages" --no-deps typer==0.20.0

Every part's memory is the peak of its process tree sampled every 0.1 s (``TreeMemory``): summed
PSS, which counts a shared page once, and summed RSS, with the PSS of each kind of process. The
bound is the schedule's lower bound of this project's graph for the registry in use (pools,
``NH_MAX_GEMINI_PROCESSES``, 50 requests/min); the old runner does the same day's 22 calls.

Goals (issue #22) at L = 5 s: wall / bound <= 1.05, per-step overhead median <= 0.3 s, the day's
process tree < 600 MB PSS at peak.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from benchmarks.day import one_partition
from benchmarks.lower_bound import lower_bound_s
from benchmarks.machine import KINDS, become_subreaper, load_average
from benchmarks.old_nh import OldRunnerUnavailable
from benchmarks.old_nh import one_day as old_nh_day
from benchmarks.step_breakdown import PHASES, phase_stats
from benchmarks.warm_cli import one_day as warm_cli_day
from nh_assets.registry import load_registry
from nh_assets.settings import registry_path_from_env

DAY = "2026-11-20"
PARTS = {"oneshot": "one-shot, fake CLI", "acp": "warm CLI (acp), real CLI", "old": "old nh, fake CLI"}
GOALS = {"wall / bound": 1.05, "overhead median": 0.3, "peak PSS": 600.0}  # at L = 5 s
MB = 2**20


def _seconds(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f} s"


def _rows(results: dict[str, dict], bound: float) -> list[tuple[str, list[str], str]]:
    """(figure, one cell per part, goal) for every row of the table."""
    parts = list(results)

    def row(name: str, cell, goal: str = "") -> tuple[str, list[str], str]:
        return name, [cell(results[p], p) for p in parts], goal

    rows = [
        row("load before", lambda r, p: r["load_before"].removeprefix("load ")),
        row("load after", lambda r, p: r["load_after"].removeprefix("load ")),
        row("run wall", lambda r, p: f"{r['run_wall_s']:.1f} s"),
        row("whole command", lambda r, p: f"{r['command_wall_s']:.1f} s"),
        row("lower bound", lambda r, p: f"{bound:.1f} s"),
        row("wall / bound", lambda r, p: f"{r['run_wall_s'] / bound:.2f}", f"<= {GOALS['wall / bound']}"),
        row("per-step overhead median", lambda r, p: _seconds(r["overhead_median_s"]), f"<= {GOALS['overhead median']} s"),
        row("per-step overhead p95", lambda r, p: _seconds(r["overhead_p95_s"])),
        ("step phases, median / p95", ["" for _ in parts], ""),
    ]
    for name, _ in PHASES:
        def phase(r, p, name=name):
            if "phases" not in r:
                return "-"
            stats = phase_stats(r["phases"])[name]
            return "n/a" if stats is None else f"{stats[0]:.2f} / {stats[1]:.2f}"
        rows.append(row(f"  {name}", phase))
    rows += [
        row("model calls", lambda r, p: str(r["calls"])),
        row("CLI processes started", lambda r, p: str(r.get("cli_processes", r["calls"]))),
        row("peak PSS summed", lambda r, p: f"{r['memory'].peak_pss_bytes / MB:.0f} MB", f"< {GOALS['peak PSS']:.0f} MB"),
        row("peak RSS summed", lambda r, p: f"{r['memory'].peak_bytes / MB:.0f} MB"),
        ("peak PSS by kind (most at once)", ["" for _ in parts], ""),
    ]
    seen = {kind for r in results.values() for kind in r["memory"].peak_by_kind}
    for kind in KINDS + sorted(seen - set(KINDS)):
        if kind not in seen:
            continue

        def by_kind(r, p, kind=kind):
            if kind not in r["memory"].peak_by_kind:
                return "-"
            total, count, _ = r["memory"].peak_by_kind[kind]
            return f"{total / MB:.0f} MB ({count})"
        rows.append(row(f"  {kind}", by_kind))
    rows.append(row("goals met (at L = 5 s)", lambda r, p: _goals(r, bound)))
    return rows


def _goals(r: dict, bound: float) -> str:
    met = [
        name for name, ok in (
            ("wall", r["run_wall_s"] / bound <= GOALS["wall / bound"]),
            ("overhead", r["overhead_median_s"] <= GOALS["overhead median"]),
            ("PSS", r["memory"].peak_pss_bytes / MB < GOALS["peak PSS"]),
        ) if ok
    ]
    return f"{len(met)} of 3" + (f" ({', '.join(met)})" if met else "")


def print_table(results: dict[str, dict], bound: float) -> None:
    rows = _rows(results, bound)
    label = max(len(name) for name, _, _ in rows) + 2
    width = max(24, *(len(cell) + 2 for _, cells, _ in rows for cell in cells), *(len(PARTS[p]) + 2 for p in results))
    print(f"{'figure':<{label}}" + "".join(f"{PARTS[p]:<{width}}" for p in results) + "goal")
    for name, cells, goal in rows:
        print((f"{name:<{label}}" + "".join(f"{cell:<{width}}" for cell in cells) + goal).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=5.0, help="model latency L per call, seconds")
    parser.add_argument("--parts", default="oneshot,acp,old", help="comma list: oneshot, acp, old")
    parser.add_argument("--old-nh", type=Path, default=os.environ.get("NH_OLD_NH") or None,
                        help="a checkout of the old nh runner (see above); default: $NH_OLD_NH")
    args = parser.parse_args(argv)
    if args.latency <= 0:
        parser.error("--latency must be above 0 seconds (the bound divides by it)")
    parts = [p for p in PARTS if p in args.parts.split(",")]
    become_subreaper("the warm CLI service, which detaches from its step, would leave the measured tree")
    registry = load_registry(registry_path_from_env())
    max_processes = int(os.environ.get("NH_MAX_GEMINI_PROCESSES", "4"))
    bounds = lower_bound_s(registry, args.latency, max_processes, 50)
    print(
        f"one day ({DAY}, {len(registry.prompts)} prompts), L = {args.latency:g} s; {os.cpu_count()} cores; "
        f"NH_MAX_GEMINI_PROCESSES={max_processes}; {load_average()} at start"
    )
    print("lower bound " + ", ".join(f"{k} {v:.1f} s" for k, v in bounds.items()))
    results: dict[str, dict] = {}
    notes: list[str] = []
    unavailable = False
    for part in parts:
        if part == "oneshot":
            r = one_partition(args.latency, DAY, registry)
            results[part] = r
        elif part == "acp":
            r = warm_cli_day("acp", args.latency, DAY, registry)
            results[part] = {**r, "load_before": r["load"]}
            if r["fallbacks"]:
                notes.append(f"warm CLI: {r['fallbacks']} calls fell back to one-shot")
        elif args.old_nh is None:
            notes.append("old nh: not run (no checkout given: --old-nh PATH or NH_OLD_NH; see --help)")
        else:
            try:
                r = old_nh_day(args.old_nh, args.latency, DAY)
            except OldRunnerUnavailable as why:
                notes.append(f"old nh: not run: {why}")
                unavailable = True
                continue
            results[part] = r
            notes.append(
                f"old nh: {r['completed']} prompts completed, {r['failed']} failed, at most {r['calls_at_once']} "
                f"call(s) at once (its floor: {r['calls']} calls / {r['calls_at_once']} x L = "
                f"{r['calls'] / max(r['calls_at_once'], 1) * args.latency:.0f} s); its per-step overhead is the gap "
                "between consecutive calls; no step events, so no phases"
            )
    if "acp" in results:
        notes.append("warm CLI: a step's model call is its first API request's arrival to its last answer (the "
                     "fake API's log); the CLI's work before the request is in 'before the CLI'")
    if results:
        print_table(results, bounds["bound"])
    for note in notes:
        print(note)
    return 2 if unavailable else 0


if __name__ == "__main__":
    raise SystemExit(main())
