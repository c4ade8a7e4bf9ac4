"""``nh status [DATE]``: the old per-day manifest, read from the instance.

Per prompt asset: state, path, sha256, tokens, duration and attempts of its latest
materialization for the day (``asset_state``), and the day's queued or running runs. The day is
complete when every prompt has been materialized for it; a stale asset still counts, because its
artifact exists (``nh plan`` says why it is stale).
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from nh_assets.cli.asset_state import MISSING, MaterializationReader, day_states
from nh_assets.cli.output import print_json, table
from nh_assets.cli.project import Project
from nh_assets.cli.webserver import IN_FLIGHT, PARTITION_TAG


def runs_of_day(instance: dg.DagsterInstance, day: str) -> list[dict]:
    """The day's runs that are queued or running, from the instance's run records."""
    statuses = [dg.DagsterRunStatus(s) for s in IN_FLIGHT]
    records = instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: day}, statuses=statuses), limit=20)
    return [{"run_id": r.dagster_run.run_id, "status": r.dagster_run.status.value} for r in records]


def status_document(project: Project, instance: dg.DagsterInstance, day: date) -> dict:
    reader = MaterializationReader(instance)
    assets = [spec.prompt_id for spec in project.registry.topological_order()]
    states = day_states(project, reader, assets, day)
    missing = [s.asset for s in states if s.state == MISSING]
    return {
        "day": day.isoformat(),
        "complete": not missing,
        "missing": missing,
        "runs_in_flight": runs_of_day(instance, day.isoformat()),
        "assets": [s.as_dict() for s in states],
    }


def _tokens(asset: dict) -> str:
    if asset["input_tokens"] is None and asset["output_tokens"] is None:
        return "-"
    return f"{asset['input_tokens'] or 0:,} in / {asset['output_tokens'] or 0:,} out"


def print_status(document: dict, as_json: bool) -> None:
    if as_json:
        print_json(document)
        return
    rows = [
        (
            a["asset"],
            a["state"],
            a["path"] or "",
            (a["sha256"] or "")[:12],
            _tokens(a),
            f"{a['duration_s']:.1f} s" if a["duration_s"] is not None else "-",
            a["attempts"] if a["attempts"] is not None else "-",
        )
        for a in document["assets"]
    ]
    print(table(["asset", "state", "path", "sha256", "tokens", "duration", "attempts"], rows, max_width=70))
    print()
    for run in document["runs_in_flight"]:
        print(f"run {run['run_id']} for {document['day']} is {run['status']}")
    done = len(document["assets"]) - len(document["missing"])
    verdict = "complete" if document["complete"] else f"incomplete ({len(document['missing'])} missing)"
    print(f"{document['day']}: {done}/{len(document['assets'])} assets materialized — {verdict}")
