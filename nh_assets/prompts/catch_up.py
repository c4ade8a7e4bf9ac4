"""After a prompt fails for good, build what it held back: declarative automation, per row.

Inside one run Dagster never starts a step whose upstream step failed: with the default
``step_dependency_config`` the step is abandoned, and with ``require_upstream_step_success=False``
it is still abandoned as soon as *any* of its inputs comes from a failed step
(``ActiveExecution._all_upstream_outputs_failed_or_abandoned`` in 1.13). So a failed research
note ends the day's run without a report, and that run is rightly marked failed.

What happens next is declared on each asset with a same-day input: once the run is over, the
automation sensor (``neurohelix_automation``) requests this asset for that day when

- it was held back or failed in its latest run (``execution_failed``), and one of its same-day
  inputs newly failed (the trigger fires once per failure, so a day that keeps failing does not
  loop: it is latched until the asset is requested or updated);
- every *required* same-day input is materialized and not failed, or is requested on the same
  tick, while *optional* ones (``prompt_id?`` in the registry) may be in any state: the asset
  then runs on what exists and names what is missing (``upstream``, ``formats.coverage``);
- nothing it reads is still running, and it is not running itself;
- the day is the latest one or the day before (a failure after midnight still catches up; older
  days are for backfills, never for automation to redo unasked).

Inputs from past days are ignored there: they are optional anyway, and a failure on an earlier
day is that day's business. But a run orders steps by asset key, whatever the partition mapping,
so a row that reads only past days of a same-run asset (``continuity_builder`` reads the last 7
reports) is held back in the run too. Such a row has no same-day input whose failure could be
observed, so its trigger is its own newly failed state, and because that also fires when its
own step failed, it is caught up at most once a calendar day (``~newly_requested().since(
cron_tick_passed(midnight))``): one automatic second chance, never a loop.

Every asset that qualifies on a tick for the same day is requested together, so the syntheses,
the report, its tags, the dashboard, the payload and the continuity notes run in one catch-up
run, in dependency order. The failed run stays failed and its alert fires; the catch-up run is a
second run with its own status.
"""

from __future__ import annotations

import datetime

import dagster as dg

from nh_assets.registry import PromptSpec

AC = dg.AutomationCondition
CATCH_UP_LABEL = "catch_up_after_failed_input"
LOOKBACK = datetime.timedelta(days=2)


def catch_up_condition(spec: PromptSpec, timezone: str) -> dg.AutomationCondition | None:
    """The row's catch-up condition, or None for a row that reads nothing (nothing can hold it back)."""
    if not spec.depends_on:
        return None
    same_day = [dep for dep in spec.depends_on if dep.is_same_day]
    past = dg.AssetSelection.assets(*[dep.prompt_id for dep in spec.depends_on if not dep.is_same_day])
    required = [dep.prompt_id for dep in same_day if not dep.optional]

    if same_day:
        input_failed = AC.any_deps_match(AC.execution_failed()).ignore(past).with_label("a same-day input failed")
        trigger = input_failed.newly_true().since(AC.newly_requested() | AC.newly_updated())
    else:
        held_back = AC.execution_failed().newly_true().with_label("held back or failed")
        caught_up_today = AC.newly_requested().since(AC.cron_tick_passed("0 0 * * *", timezone))
        trigger = held_back.since(AC.newly_requested() | AC.newly_updated()) & ~caught_up_today
    condition = (
        AC.in_latest_time_window(LOOKBACK)
        & AC.execution_failed()
        & trigger
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    )
    if required:
        ready = (~AC.missing() & ~AC.execution_failed()) | AC.will_be_requested()
        condition = condition & AC.all_deps_match(ready).allow(dg.AssetSelection.assets(*required)).with_label(
            "required inputs materialized"
        )
    return condition.with_label(CATCH_UP_LABEL)
