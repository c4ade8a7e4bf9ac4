"""Why a same-day input is missing, in one line, read from Dagster's own records.

A degraded artifact names the inputs it was built without and why (``formats.coverage``). The
why is already in the instance: the input's latest planned materialization for that day names
its run, and that run's step failure carries the classified cause the asset raised (quota, a
400, a timeout, a rejected answer). An input whose step never ran (an input of its own failed
first) or that was never attempted says so instead. Open-source Dagster 1.13 stores no
``ASSET_FAILED_TO_MATERIALIZE`` events, so the run's step events are the record to read.
"""

from __future__ import annotations

import dagster as dg

# A dg.Failure's error message repeats its class path before the description.
_FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "
_FIX_SEPARATOR = " — fix: "
REASON_CHARS = 300


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _step_key(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> str | None:
    planned = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    for record in planned.records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.asset_key == key:
            return event.step_key
    return None


def _failure_cause(instance: dg.DagsterInstance, run_id: str, step_key: str) -> str | None:
    failures = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    for record in reversed(failures.records):
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key != step_key or event.step_failure_data is None:
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        message = (user.description if user and user.description else None) or (data.error.message if data.error else "")
        cause = _first_line(message).removeprefix(_FAILURE_PREFIX).split(_FIX_SEPARATOR)[0]
        return cause[:REASON_CHARS] or "the step failed without a message"
    return None


def why_missing(instance: dg.DagsterInstance, prompt_id: str, day: str) -> str:
    """One line saying why ``prompt_id`` has no artifact for ``day``."""
    key = dg.AssetKey(prompt_id)
    planned = instance.get_latest_planned_materialization_info(key, day)
    if planned is None:
        return f"not materialized for {day} (never run for that day)"
    run = instance.get_run_by_id(planned.run_id)
    short = planned.run_id[:8]
    step_key = _step_key(instance, planned.run_id, key)
    cause = _failure_cause(instance, planned.run_id, step_key) if step_key else None
    if cause:
        return f"failed for {day} in run {short}: {cause}"
    if run is not None and not run.is_finished:
        return f"not materialized for {day}: run {short} is still {run.status.value.lower()}"
    status = run.status.value.lower() if run is not None else "unknown"
    return f"not materialized for {day}: run {short} ended ({status}) before its step ran — an input it needs failed"
