"""``nh run`` and ``nh backfill``: submit to the running instance and, with ``--wait``, follow.

A run goes to the instance's run queue through GraphQL, never executes in ``nh``'s process, so
two ``nh run``s of one day (or one and the schedule's) queue behind each other like any other
runs: ``dagster asset materialize`` would run in the terminal, outside the queue, and overlap. A
range is one multi-run asset backfill that the daemon advances, so a day's ``novelty_filter``
waits for the previous day's ideas. Following polls the webserver; interrupting ``nh`` stops only
the following, never the run.
"""

from __future__ import annotations

import time

from nh_assets.cli.exit_codes import OK, RUN_FAILED
from nh_assets.cli.output import Progress, note, print_json
from nh_assets.cli.webserver import BackfillProgress, RunProgress, Webserver

POLL_S = 1.0
QUEUE_DAEMON, BACKFILL_DAEMON = "QUEUED_RUN_COORDINATOR", "BACKFILL"


def _warn_daemons(server: Webserver, wanted: list[str], what: str) -> None:
    down = server.unhealthy_daemons(wanted)
    if down:
        note(
            f"nh: warning: the Dagster daemon ({', '.join(down)}) is not running, so {what} will wait — "
            "start it with `bash scripts/dev.sh` (dagster dev runs the daemon)"
        )


def submit_run(server: Webserver, job_name: str, day: str, assets: list[str] | None) -> str:
    _warn_daemons(server, [QUEUE_DAEMON], "the run")
    ahead = server.runs_in_flight(day)
    run_id = server.launch_run(job_name, day, assets)
    if ahead:
        others = ", ".join(f"{rid[:8]} ({status})" for rid, status in ahead)
        note(f"nh: {day} already has run(s) {others}; this one waits in the queue (one run per day)")
    return run_id


def _follow(poll):
    """Poll until the state says it finished, showing each new line; returns the last state."""
    progress = Progress()
    try:
        while True:
            state = poll()
            progress.show(state.line())
            if state.finished:
                return state
            time.sleep(POLL_S)
    finally:
        progress.done()


def follow_run(server: Webserver, run_id: str) -> RunProgress:
    return _follow(lambda: server.run_progress(run_id))


def follow_backfill(server: Webserver, backfill_id: str) -> BackfillProgress:
    return _follow(lambda: server.backfill_progress(backfill_id))


def run_command(
    server: Webserver, job_name: str, day: str, assets: list[str] | None, *, wait: bool, as_json: bool
) -> int:
    run_id = submit_run(server, job_name, day, assets)
    url = server.run_url(run_id)
    if not wait:
        if as_json:
            print_json({"run_id": run_id, "day": day, "url": url, "status": server.run_progress(run_id).status})
        else:
            print(url)
        return OK
    if not as_json:
        print(url, flush=True)
    final = follow_run(server, run_id)
    failed = sorted(step for step, status in final.steps.items() if status == "FAILURE")
    causes = server.failure_causes(run_id) if failed else {}
    if as_json:
        document = {"run_id": run_id, "day": day, "url": url, "status": final.status, "failed_steps": failed}
        print_json({**document, "causes": causes})
    elif final.status != "SUCCESS":
        for step in failed:
            if causes.get(step):
                note(f"nh: {step}: {causes[step]}")
        which = f"; failed: {', '.join(failed)}" if failed else ""
        note(f"nh: run {run_id} ended {final.status}{which} — {url}")
    return OK if final.status == "SUCCESS" else RUN_FAILED


def backfill_command(
    server: Webserver, start: str, end: str, assets: list[str], *, wait: bool, as_json: bool
) -> int:
    _warn_daemons(server, [BACKFILL_DAEMON, QUEUE_DAEMON], "the backfill")
    backfill_id = server.launch_backfill(start, end, assets, title=f"nh backfill {start}..{end}")
    url = server.backfill_url(backfill_id)
    if not wait:
        if as_json:
            print_json({"backfill_id": backfill_id, "start": start, "end": end, "url": url})
        else:
            print(url)
        return OK
    if not as_json:
        print(url, flush=True)
    final = follow_backfill(server, backfill_id)
    if as_json:
        print_json(
            {
                "backfill_id": backfill_id,
                "start": start,
                "end": end,
                "url": url,
                "status": final.status,
                "materialized": final.materialized,
                "targeted": final.targeted,
                "failed": final.failed,
            }
        )
    elif not final.succeeded:
        detail = f"; {final.error}" if final.error else ""
        note(f"nh: backfill {backfill_id} ended {final.status}, {final.failed} failed partition(s){detail} — {url}")
    return OK if final.succeeded else RUN_FAILED
