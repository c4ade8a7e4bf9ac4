"""Concurrency classes as Dagster pools, and how their limits reach the instance.

Each LLM asset runs in the pool ``gemini_<class>`` (sequential 1, low 2, medium 4, high 8, from
the registry). Dagster enforces pool limits across every run and backfill of the instance, but
1.13's ``dagster.yaml`` only holds a ``default_limit`` for pools nobody configured; per-pool limits
live in the instance's storage. ``apply_pool_limits`` writes them there, idempotently, and
``python -m nh_assets.pools apply`` is what ``scripts/dev.sh`` runs before starting Dagster.

The same limits are also given to each run's executor (``run_tag_limits``): a step blocked on a
pool claim is re-checked by Dagster after 1, 1.1, 1.21 … s (up to 15 s), so a slot freed by a step
of the same run would sit idle until the next re-check. With the limits
mirrored in the run, a step is launched when its own run holds no slot it needs, and its pool
claim then succeeds at once; the pools stay the one limit across runs and backfills.
"""

from __future__ import annotations

import argparse
import sys
from typing import Mapping

import dagster as dg

from nh_assets.registry import CONCURRENCY_LIMITS

POOL_PREFIX = "gemini_"
# Op tag carrying an LLM step's class, for the executor's in-run copy of the limits.
CLASS_TAG = "nh/concurrency_class"


def pool_name(concurrency_class: str) -> str:
    return f"{POOL_PREFIX}{concurrency_class}"


def pool_limits(limits: Mapping[str, int] | None = None) -> dict[str, int]:
    return {pool_name(cls): limit for cls, limit in (limits or CONCURRENCY_LIMITS).items()}


def run_tag_limits(max_processes: int, limits: Mapping[str, int] | None = None) -> list[dict]:
    """Executor ``tag_concurrency_limits`` that keep one run within every class's pool limit and
    within the machine-wide CLI process cap, so none of its steps holds a pool slot while waiting
    for a process permit taken by a sibling step."""
    per_class = [
        {"key": CLASS_TAG, "value": cls, "limit": limit} for cls, limit in (limits or CONCURRENCY_LIMITS).items()
    ]
    return [*per_class, {"key": CLASS_TAG, "limit": max_processes}]


def apply_pool_limits(instance: dg.DagsterInstance, limits: Mapping[str, int] | None = None) -> dict[str, int]:
    """Set every class's pool limit on ``instance``; returns pool → limit as applied."""
    applied = pool_limits(limits)
    for pool, limit in applied.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nh_assets.pools", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("apply", help="write the registry's pool limits into the instance at $DAGSTER_HOME")
    sub.add_parser("show", help="print the pool limits the instance holds")
    args = parser.parse_args(argv)
    try:
        instance = dg.DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback, for a CLI
        print(f"pools: cannot open the Dagster instance ({exc}); set DAGSTER_HOME to dagster_home/", file=sys.stderr)
        return 2
    with instance:
        if args.command == "apply":
            for pool, limit in apply_pool_limits(instance).items():
                print(f"{pool}\t{limit}")
        else:
            for pool in sorted(instance.event_log_storage.get_concurrency_keys()):
                info = instance.event_log_storage.get_concurrency_info(pool)
                print(f"{pool}\t{info.slot_count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
