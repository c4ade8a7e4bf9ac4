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

The model calls come from either of two logs: the fake CLI's (one record per CLI process, with its
pid), or, for the real CLI, the fake Gemini API's request log (``api_calls``: one record per
request, from its arrival to its answer). A warm CLI serves many steps from one long-lived
process, so with the API's log the CLI is not tied to a step: "before the CLI" then runs from
STEP_START to the step's first request, the CLI's own work before it included, and the CLI
start-up and exit phases are n/a.

Rate-permit and process-permit waits (the step's own metadata) are limits doing their job; they are
taken out of the phase before the CLI and printed on their own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

import dagster as dg

from nh_assets.demo.answers import parse_prompt_contract
from nh_assets.registry import Registry

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


# The phases from the executor's launch to STEP_SUCCESS, the model call and permit waits left out:
# what a step costs beyond its call to the model.
OVERHEAD_PHASES = ["process start", "plan + resources", "before the CLI", "answer -> artifact", "checks + events"]


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
    process) and ``calls``. ``calls`` are ``{prompt_id, start, end}`` records, with the CLI's ``pid``
    when the log knows it. A step without a STEP_SUCCESS is left out."""
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
        cli_pids.setdefault(call["prompt_id"], call.get("pid", -1))
        last_cli_pids[call["prompt_id"]] = call.get("pid", -1)
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


def phase_stats(phases: Mapping[str, Mapping[str, float]]) -> dict[str, tuple[float, float] | None]:
    """Per phase of ``PHASES``: (median, p95) across steps, None where no step has it."""
    stats: dict[str, tuple[float, float] | None] = {}
    for name, _ in PHASES:
        values = [p[name] for p in phases.values() if not math.isnan(p[name])]
        stats[name] = (statistics.median(values), percentile(values, 0.95)) if values else None
    return stats


def summary_lines(phases: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per phase: median and p95 across steps; then the events each step wrote."""
    lines = [f"  step phases across {len(phases)} steps      median    p95"]
    stats = phase_stats(phases)
    for name, meaning in PHASES:
        if stats[name] is None:
            lines.append(f"    {name:<20} {'n/a':>7}  {'n/a':>7}  ({meaning}; not seen)")
            continue
        median, p95 = stats[name]
        lines.append(f"    {name:<20} {median:6.2f} s {p95:6.2f} s  ({meaning})")
    if not phases:
        return lines + ["    (no step ran in a process of its own: no STEP_WORKER_STARTING events)"]
    events = [p["events"] for p in phases.values()]
    calls = [p["calls"] for p in phases.values()]
    lines.append(
        f"    events per step      median {statistics.median(events):.0f}, max {max(events):.0f}"
        f" (each one SQLite write); logged model calls per step max {max(calls):.0f}"
    )
    return lines


def api_calls(requests: Iterable[Mapping]) -> list[dict]:
    """The fake Gemini API's request log as calls for ``step_phases``: each request whose prompt
    names its row (``NEUROHELIX PROMPT:``), from its arrival (``arrived``, stamped by the
    benchmark's API) to its answer (``time``). A search tool's own request names no row and
    falls inside its call's span anyway."""
    found = []
    for request in requests:
        prompt_id = parse_prompt_contract(request.get("prompt") or "").get("prompt_id")
        if prompt_id and "arrived" in request:
            found.append({"prompt_id": prompt_id, "start": request["arrived"], "end": request["time"]})
    return found


def day_breakdown(
    dagster_home: str,
    registry: Registry,
    calls: Iterable[Mapping],
    process_started: Mapping[int, float],
    process_gone: Mapping[int, float],
) -> dict:
    """The one run in ``dagster_home``: its wall time RUN_START -> RUN_SUCCESS, each step's phases,
    and the per-step orchestration overhead (``OVERHEAD_PHASES``: the step's process lifetime up
    to STEP_SUCCESS minus the model call and minus the waits for a rate or process permit, which
    are limits doing their job) as median and p95 across steps."""
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        (run,) = instance.get_run_records()
        events = instance.all_logs(run.dagster_run.run_id)
        waits: dict[str, float] = {}
        for spec in registry.prompts:
            records = instance.fetch_materializations(dg.AssetKey(spec.prompt_id), limit=1).records
            meta = records[0].asset_materialization.metadata if records else {}
            waits[spec.prompt_id] = sum(
                meta[name].value for name in ("gemini.rate_limit_wait_s", "gemini.process_slot_wait_s") if name in meta
            )
    run_at = {e.dagster_event.event_type: e.timestamp for e in events if e.dagster_event is not None}
    phases = step_phases(events, calls, waits, process_started, process_gone)
    overheads = [sum(p[name] for name in OVERHEAD_PHASES) for p in phases.values()]
    return {
        "run_wall_s": run_at[ET.RUN_SUCCESS] - run_at[ET.RUN_START],
        "phases": phases,
        "steps": len(overheads),
        "overhead_median_s": statistics.median(overheads) if overheads else math.nan,
        "overhead_p95_s": percentile(overheads, 0.95) if overheads else math.nan,
    }
