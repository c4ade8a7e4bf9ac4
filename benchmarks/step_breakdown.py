"""Where a step's time goes: consecutive phases of every step of one run, read from Dagster's own
event log and the fake CLI's log of each call, with no timing added to the package.

A step's life, as the records show it (all on the same wall clock, ``time.time()``):

    STEP_WORKER_STARTING   the run worker's executor launches the step process
    step process started   forked by the forkserver (its start time in /proc/PID/stat)
    STEP_WORKER_STARTED    the process has its instance (DagsterInstance.from_ref)
    STEP_START             execution plan built, logs captured, resources initialised (RESOURCE_INIT_*)
    CLI process started    upstream collected, prompt rendered, gate opened, permits taken
    first CLI call starts  the CLI's own start-up (for the fake CLI: Python and its imports)
    last CLI call ends     the latency L and the fake's request through the rate gate (and a
                           re-ask's, if the answer was judged)
    CLI process gone       the CLI writes its answer and exits (sampled)
    ASSET_MATERIALIZATION  answer parsed, artifact written, metadata built
    STEP_SUCCESS           the checks' outputs and evaluations written as events
    process gone           resources torn down (gates shut down), the process exits: from the
                           memory sampler's last sight of the step's pid, so to its sampling period

Process start times come from the memory sampler, which sees every process of the tree that lives
longer than its 100 ms period; a phase that needs one it missed is printed as n/a.

Rate-permit and process-permit waits (the step's own metadata) are limits doing their job; they are
taken out of the phase before the CLI and printed on their own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

import dagster as dg

ET = dg.DagsterEventType
PLANNED = {ET.ASSET_MATERIALIZATION_PLANNED, ET.ASSET_CHECK_EVALUATION_PLANNED}

PHASES = [
    ("process start", "STEP_WORKER_STARTING -> STEP_WORKER_STARTED"),
    ("  launch -> fork", "STEP_WORKER_STARTING -> step process started"),
    ("  fork -> instance", "step process started -> STEP_WORKER_STARTED"),
    ("plan + resources", "STEP_WORKER_STARTED -> STEP_START"),
    ("  resource init", "RESOURCE_INIT_STARTED -> RESOURCE_INIT_SUCCESS"),
    ("before the CLI", "STEP_START -> first CLI start, less permit waits"),
    ("  to CLI process", "STEP_START -> CLI process started, less permit waits"),
    ("  CLI start-up", "CLI process started -> first CLI start"),
    ("CLI calls", "first CLI start -> last CLI end"),
    ("answer -> artifact", "last CLI end -> ASSET_MATERIALIZATION"),
    ("  CLI exit", "last CLI end -> CLI process gone (sampled)"),
    ("  parse + write", "CLI process gone -> ASSET_MATERIALIZATION"),
    ("checks + events", "ASSET_MATERIALIZATION -> STEP_SUCCESS"),
    ("teardown + exit", "STEP_SUCCESS -> process gone"),
    ("permit waits", "rate + process permits (metadata)"),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def step_phases(
    events: Iterable[dg.EventLogEntry],
    calls: Iterable[Mapping],
    waits: Mapping[str, float],
    process_started: Mapping[int, float],
    process_gone: Mapping[int, float],
) -> dict[str, dict[str, float]]:
    """Per step key: seconds in each phase of ``PHASES``, plus ``events`` (written by the step
    process) and ``calls``. A step without a STEP_SUCCESS is left out."""
    first: dict[tuple[str, ET], float] = {}
    pids: dict[str, int] = {}
    written: dict[str, int] = {}
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == ET.LOGS_CAPTURED:
            for key in event.logs_captured_data.step_keys or []:
                written[key] = written.get(key, 0) + 1
            continue
        key = event.step_key
        if key is None or event.event_type in PLANNED:
            continue  # run-level events, and the plan the run worker writes before the run starts
        first.setdefault((key, event.event_type), entry.timestamp)
        if event.event_type != ET.STEP_WORKER_STARTING:
            written[key] = written.get(key, 0) + 1
            if event.pid is not None:
                pids.setdefault(key, event.pid)
    spans: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    cli_pids: dict[str, int] = {}
    last_cli_pids: dict[str, int] = {}
    for call in sorted(calls, key=lambda c: c["start"]):
        span = spans.setdefault(call["prompt_id"], [call["start"], call["end"]])
        span[0], span[1] = min(span[0], call["start"]), max(span[1], call["end"])
        cli_pids.setdefault(call["prompt_id"], call["pid"])
        last_cli_pids[call["prompt_id"]] = call["pid"]
        counts[call["prompt_id"]] = counts.get(call["prompt_id"], 0) + 1
    result: dict[str, dict[str, float]] = {}
    for (key, kind), success in first.items():
        if kind != ET.STEP_SUCCESS:
            continue
        at = {k: first.get((key, k)) for k in (ET.STEP_WORKER_STARTING, ET.STEP_WORKER_STARTED, ET.STEP_START)}
        # A step in a thread of the run worker (``step_threads``) has no process of its own to start,
        # fork or end: those phases are 0 and n/a.
        threaded = at[ET.STEP_WORKER_STARTING] is None and at[ET.STEP_WORKER_STARTED] is None
        if threaded:
            at[ET.STEP_WORKER_STARTING] = at[ET.STEP_WORKER_STARTED] = at[ET.STEP_START]
        materialized = first.get((key, ET.ASSET_MATERIALIZATION), success)
        if None in at.values():
            continue
        cli_start, cli_end = spans.get(key, [materialized, materialized])
        wait = waits.get(key, 0.0)
        gone = None if threaded else process_gone.get(pids.get(key, -1))
        forked = math.nan if threaded else process_started.get(pids.get(key, -1), math.nan)
        cli_forked = process_started.get(cli_pids.get(key, -1), math.nan)
        cli_gone = min(process_gone.get(last_cli_pids.get(key, -1), math.nan), materialized)
        result[key] = {
            "process start": at[ET.STEP_WORKER_STARTED] - at[ET.STEP_WORKER_STARTING],
            "  launch -> fork": forked - at[ET.STEP_WORKER_STARTING],
            "  fork -> instance": at[ET.STEP_WORKER_STARTED] - forked,
            "plan + resources": at[ET.STEP_START] - at[ET.STEP_WORKER_STARTED],
            "  resource init": first.get((key, ET.RESOURCE_INIT_SUCCESS), math.nan)
            - first.get((key, ET.RESOURCE_INIT_STARTED), math.nan),
            "before the CLI": cli_start - at[ET.STEP_START] - wait,
            "  to CLI process": cli_forked - at[ET.STEP_START] - wait,
            "  CLI start-up": cli_start - cli_forked,
            "CLI calls": cli_end - cli_start,
            "answer -> artifact": materialized - cli_end,
            "  CLI exit": cli_gone - cli_end,
            "  parse + write": materialized - cli_gone,
            "checks + events": success - materialized,
            "teardown + exit": max(0.0, gone - success) if gone is not None else math.nan,
            "permit waits": wait,
            "events": float(written.get(key, 0)),
            "calls": float(counts.get(key, 0)),
        }
    return result


def summary_lines(phases: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per phase: median and p95 across steps; then the events each step wrote."""
    lines = [f"  step phases across {len(phases)} steps      median    p95"]
    for name, meaning in PHASES:
        values = [p[name] for p in phases.values() if not math.isnan(p[name])]
        if not values:
            lines.append(f"    {name:<20} {'n/a':>7}  {'n/a':>7}  ({meaning}; not seen)")
            continue
        median, p95 = statistics.median(values), percentile(values, 0.95)
        lines.append(f"    {name:<20} {median:6.2f} s {p95:6.2f} s  ({meaning})")
    events = [p["events"] for p in phases.values()]
    calls = [p["calls"] for p in phases.values()]
    lines.append(
        f"    events per step      median {statistics.median(events):.0f}, max {max(events):.0f}"
        f" (each one SQLite write); CLI calls per step max {max(calls):.0f}"
    )
    return lines
