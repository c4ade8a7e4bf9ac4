"""The executor every job of the code location runs with: threads of the run worker by default,
a process per step (``NH_EXECUTOR=multiprocess``), or Celery across machines.

Every step is an I/O-bound wait on a CLI subprocess, so steps run in parallel; the Dagster pools
and the process permits decide how many of them call Gemini. By default they are threads of the
run's own process (``step_threads``), which costs a step milliseconds of set-up instead of a
process's second. The multiprocess executor remains for isolation per step. With ``forkserver``
each step process is forked from a server that has already imported what a step needs, so it
starts without importing anything. Dagster preloads only the job's module by default, which here loads nothing: ``nh_assets``
builds ``defs`` lazily. The list below therefore names the code location's module and the modules
Dagster imports in every step process to open the instance: without them each step process
would import SQLAlchemy, Alembic and Dagster's SQLite storage before its first event, while
holding its pool slot.
"""

from __future__ import annotations

import dagster as dg

from nh_assets.pools import run_tag_limits
from nh_assets.settings import Settings
from nh_assets.step_threads import step_threads_executor

STEP_PRELOAD_MODULES = [
    "dagster",
    "nh_assets.definitions",
    # The storage classes of the SQLite instance, as its dagster.yaml names them (storage: sqlite,
    # compute_logs, local_artifact_storage): DagsterInstance.from_ref imports them in each step.
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.root",
    # The same for dagster_home/postgres/dagster.yaml, imported once by the server either way.
    "dagster_postgres",
]


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    limits = run_tag_limits(settings.max_gemini_processes)
    if settings.executor == "threads":
        # The default: a step is a thread of the run worker (``step_threads``), its set-up the run's.
        return step_threads_executor.configured(
            {"max_concurrent": settings.executor_max_concurrent, "tag_concurrency_limits": limits}
        )
    if settings.executor == "celery":
        # Several machines (README, "Postgres and several machines"): every step is a Celery task
        # that any worker runs against the shared Postgres instance. Pools still hold: the Celery
        # loop claims the same instance concurrency slots. URLs stay environment variables.
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {"broker": {"env": "NH_CELERY_BROKER"}, "backend": {"env": "NH_CELERY_BACKEND"}}
        )
    start_method: dict = {"spawn": {}}
    if settings.executor_start_method == "forkserver":
        start_method = {"forkserver": {"preload_modules": STEP_PRELOAD_MODULES}}
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": settings.executor_max_concurrent,
            "tag_concurrency_limits": limits,
            "start_method": start_method,
        }
    )
