"""An executor that runs a run's steps in threads of its run worker.

Every prompt step waits on a remote model through a CLI subprocess; its own Python work (render a
prompt, parse an answer, write an artifact) takes milliseconds. The multiprocess executor gives
each step a process: a fork, an instance, the job and its plan rebuilt, resources set up and
Dagster's log capture started (four helper processes a step), about a second of machinery per
step and a process tree near half a gigabyte, on the day's critical path (issue #22). Here a step
is a thread: the plan, the resources and the log capture are the run's, made once.

Dagster has no threaded executor (dagster-io/dagster#4041), so this one is built on the pieces
its in-process executor is made of (``ActiveExecution``, ``InstanceConcurrencyContext``,
``dagster_event_sequence_for_step``): pools are claimed, run tag limits and ``max_concurrent``
held, retries (``RetryPolicy``) scheduled and hooks run exactly as they are there. Only the step
bodies run concurrently. A terminated run stops its steps' waits through ``cancellation``, since a
thread cannot be interrupted; a step still running then is recorded as interrupted.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.execution.tags import get_tag_concurrency_limits_config
from dagster._core.executor.base import Executor
from dagster._utils.error import serializable_error_info_from_exc_info

from nh_assets import cancellation

# How long the loop waits for a step's event before it looks for interrupts and ready steps.
_POLL_S = 0.5
_DONE = object()


class StepThreadsExecutor(Executor):
    def __init__(self, *, retries: RetryMode, max_concurrent: int, tag_concurrency_limits: Sequence[dict]):
        self._retries = retries
        self._max_concurrent = max_concurrent
        self._tag_concurrency_limits = list(tag_concurrency_limits)

    @property
    def retries(self) -> RetryMode:
        return self._retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return StepDependencyConfig.default()

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in threads of the run worker (pid: {os.getpid()}), at most {self._max_concurrent} at once",
            event_specific_data=EngineEventData.in_process(os.getpid(), execution_plan.step_keys_to_execute),
        )
        yield from ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=self._steps_in_threads,
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job,
                retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run,
                instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error,
                output_capture=plan_context.output_capture,
                step_dependency_config=self.step_dependency_config,
            ),
        )

    def _steps_in_threads(self, job_context: PlanExecutionContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        cancellation.reset()
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        running: dict[str, tuple[threading.Thread, Any, list[DagsterEvent]]] = {}
        stopping = False
        with ExitStack() as stack:
            concurrency = stack.enter_context(InstanceConcurrencyContext(job_context.instance, job_context.dagster_run))
            active = stack.enter_context(
                ActiveExecution(
                    execution_plan,
                    retry_mode=job_context.retry_mode,
                    max_concurrent=self._max_concurrent,
                    tag_concurrency_limits=self._tag_concurrency_limits,
                    instance_concurrency_context=concurrency,
                    step_dependency_config=self.step_dependency_config,
                )
            )
            yield from _capture_logs(job_context, execution_plan, stack)
            try:
                while running or (not stopping and not active.is_complete):
                    if not stopping and active.check_for_interrupts():
                        stopping = True
                        active.mark_interrupted()
                        yield DagsterEvent.engine_event(
                            job_context, "Run terminated: stopping the steps running in threads",
                            EngineEventData.interrupted(list(running)),
                        )
                        cancellation.cancel_all()
                    if not stopping:
                        for step in active.get_steps_to_execute(limit=self._max_concurrent - len(running)):
                            step_context = job_context.for_step(step, active.get_known_state())
                            thread = threading.Thread(
                                target=_run_step, args=(step_context, events), name=f"step {step.key}", daemon=True
                            )
                            running[step.key] = (thread, step_context, [])
                            thread.start()
                        yield from active.concurrency_event_iterator(job_context)
                    try:
                        # A pending pool claim or a retry's wait is due after ``sleep_interval`` (0: none waits).
                        due = active.sleep_interval()
                        key, item = events.get(timeout=_POLL_S if due == 0 else min(_POLL_S, max(0.0, due)))
                    except queue.Empty:
                        continue
                    _thread, step_context, step_events = running[key]
                    if isinstance(item, DagsterEvent):
                        step_events.append(item)
                        yield item
                        active.handle_event(item)
                        continue
                    running.pop(key)[0].join()
                    if item is not _DONE and not isinstance(item, (KeyboardInterrupt, DagsterExecutionInterruptedError)):
                        # Dagster turns a step's errors into its failure events; this is its machinery failing.
                        error = serializable_error_info_from_exc_info((type(item), item, item.__traceback__))
                        yield DagsterEvent.engine_event(
                            step_context, f"The thread of step {key} failed outside the step",
                            EngineEventData.engine_error(error),
                        )
                    active.verify_complete(job_context, key)
                    for event in active.plan_events_iterator(job_context):
                        step_events.append(event)
                        yield event
                    yield from _trigger_hook(step_context, step_events)
            finally:
                if running:  # the loop itself failed: no step may go on unwatched
                    cancellation.cancel_all()
                    for thread, _context, _events in running.values():
                        thread.join(timeout=30)
        if stopping:
            raise DagsterExecutionInterruptedError()


def _capture_logs(job_context: PlanExecutionContext, execution_plan: ExecutionPlan, stack: ExitStack) -> Iterator[DagsterEvent]:
    """One capture of the process's stdout and stderr for all its steps, as the in-process executor does."""
    manager = job_context.instance.compute_log_manager
    log_key = manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    try:
        log_context = stack.enter_context(manager.capture_logs(log_key))
    except Exception:  # noqa: BLE001 - the steps run without captured logs, as Dagster's own executors do
        yield DagsterEvent.engine_event(
            job_context, "Exception while setting up compute log capture",
            EngineEventData(error=serializable_error_info_from_exc_info(sys.exc_info())),
        )
        return
    yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)


def _run_step(step_context, events: queue.Queue) -> None:
    key = step_context.step.key
    try:
        for event in dagster_event_sequence_for_step(step_context):
            events.put((key, event))
    except BaseException as exc:  # noqa: BLE001 - reported to the loop, which owns the run's events
        events.put((key, exc))
        return
    events.put((key, _DONE))


@dg.executor(
    name="step_threads",
    config_schema={
        "max_concurrent": dg.Field(int, default_value=8, description="Steps running at once in the run."),
        "tag_concurrency_limits": get_tag_concurrency_limits_config(),
        "retries": get_retries_config(),
    },
)
def step_threads_executor(init_context: dg.InitExecutorContext) -> StepThreadsExecutor:
    config = init_context.executor_config
    return StepThreadsExecutor(
        retries=RetryMode.from_config(config["retries"]) or RetryMode.ENABLED,  # ty: ignore[invalid-argument-type]
        max_concurrent=config["max_concurrent"],  # ty: ignore[invalid-argument-type]
        tag_concurrency_limits=config.get("tag_concurrency_limits") or [],  # ty: ignore[invalid-argument-type]
    )
