"""What ``benchmarks.unattended`` asks of each side's own code, run by path in that side's tree.

The benchmark compares two versions of ``nh_assets``; a Python process can import only one. So
the steps that need the pipeline's own objects (the catch-up's automation tick, the alert
sensors) run here, in a child whose ``PYTHONPATH`` names the side's tree, and print one JSON line.
Only APIs both versions share are used; a sensor one version lacks is reported as absent.

    python benchmarks/unattended_side.py catch-up DAY
    python benchmarks/unattended_side.py alerts DAY WEBHOOK_URL
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import datetime, time, timezone

import dagster as dg

import nh_assets
from nh_assets.data_layout import DataLayoutResource
from nh_assets.definitions import build_definitions
from nh_assets.operations.alerts import FailureAlertResource
from nh_assets.operations.sensors import FAILURE_SENSOR_NAME
from nh_assets.registry import load_registry
from nh_assets.settings import load_settings, registry_path_from_env

PUBLISHING = ("site", "site_deployment")  # built on their own after the day, as the tests do


def _definitions() -> tuple[dg.Definitions, object]:
    settings = load_settings()
    return build_definitions(settings, load_registry(registry_path_from_env())), settings


def catch_up(day: str) -> dict:
    """The assets the automation tick at noon of ``day`` would build: what failed inputs held back."""
    defs, _ = _definitions()
    noon = datetime.combine(datetime.fromisoformat(day).date(), time(12), tzinfo=timezone.utc)
    with dg.DagsterInstance.get() as instance:
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=noon)
    held = sorted(r.key.to_user_string() for r in tick.results if r.true_subset.size)
    return {"held_back": [key for key in held if key not in PUBLISHING]}


def alerts(day: str, webhook_url: str) -> dict:
    """Run the failure sensor on each failed run of ``day`` and the service-alert sensor (twice,
    as its cursor advances) once, posting to ``webhook_url``."""
    defs, settings = _definitions()
    resources = {"alerts": FailureAlertResource(webhook_url=webhook_url), "layout": DataLayoutResource(root=str(settings.data_root))}
    service_sensor = None
    try:
        service_sensor = importlib.import_module("nh_assets.operations.service_alerts").SERVICE_SENSOR_NAME
    except ImportError:
        pass  # a version without service alerts
    with dg.DagsterInstance.get() as instance:
        if service_sensor is not None:
            sensor = defs.resolve_sensor_def(service_sensor)
            context = dg.build_sensor_context(instance=instance, resources=resources)
            sensor(context)
            sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=context.cursor))
        failed = [
            run for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            if run.tags.get("dagster/partition") == day
        ]
        for run in failed:
            event = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
            defs.resolve_sensor_def(FAILURE_SENSOR_NAME)(dg.build_run_status_sensor_context(
                sensor_name=FAILURE_SENSOR_NAME, dagster_event=event, dagster_instance=instance,
                dagster_run=run, resources=resources,
            ))
    return {"failed_runs": len(failed), "service_sensor": service_sensor is not None}


def main(argv: list[str]) -> int:
    command, day, *rest = argv
    found = catch_up(day) if command == "catch-up" else alerts(day, *rest)
    print(json.dumps({**found, "nh_assets": nh_assets.__file__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
