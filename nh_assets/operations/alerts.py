"""What an operator is told when a run fails, and how it reaches them.

A failed run is reduced to a ``FailureSummary``: run id, job, partition, the assets (or checks)
whose steps failed with the cause each one was classified with (``nh.failure_kind`` from the
asset's ``dg.Failure``, else the error's first line), the assets that were planned but never
materialized, and a link to the run in the Dagster UI. The summary is rendered once as markdown
for the failure log file and once as a short text for a chat webhook.

The webhook URL is a secret: it reaches ``FailureAlertResource`` only through
``dg.EnvVar("NH_ALERT_WEBHOOK")`` and never appears in a log line or an error message. A webhook
that is down costs one warning, never the alert file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field

from nh_assets.gemini.failures import FailureKind
from nh_assets.gemini.service_memory import REMEMBERED
from nh_assets.redaction import Redactor
from nh_assets.settings import Settings

WEBHOOK_ENV_VAR = "NH_ALERT_WEBHOOK"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
FAILURE_KIND_KEY = "nh.failure_kind"
# Not FailureKinds of the Gemini CLI: causes the summary names when no asset classified its failure.
CHECK_FAILED = "check_failed"
RUN_FAILURE = "run_failure"
# Discord refuses `content` over 2000 characters; Slack is more generous but a chat line
# should stay short anyway: the full summary is in the failure log file.
CHAT_LIMIT = 1900
LISTED_IN_CHAT = 8


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    targets: tuple[str, ...]  # asset keys or "asset:check" names the step was to produce
    kind: str
    cause: str


@dataclass(frozen=True)
class FailureSummary:
    run_id: str
    job_name: str
    partition: str | None
    run_url: str
    failures: tuple[StepFailure, ...]
    not_materialized: tuple[str, ...] = field(default=())
    run_message: str = ""

    @property
    def kind(self) -> str:
        return self.failures[0].kind if self.failures else RUN_FAILURE

    @property
    def cause(self) -> str:
        return self.failures[0].cause if self.failures else self.run_message

    @property
    def failed_targets(self) -> tuple[str, ...]:
        return tuple(target for failure in self.failures for target in failure.targets)

    def headline(self) -> str:
        day = f" for {self.partition}" if self.partition else ""
        return f"NeuroHelix run failed: {self.job_name}{day} — {self.kind}: {self.cause}"

    def markdown(self) -> str:
        lines = [
            f"# NeuroHelix run failure — {self.job_name} {self.partition or ''}".rstrip(),
            "",
            f"- run: [{self.run_id}]({self.run_url})",
            f"- job: `{self.job_name}`",
            f"- partition: `{self.partition or 'none'}`",
            f"- cause: **{self.kind}** — {self.cause}",
            "",
            "## Failed steps",
            "",
        ]
        if self.failures:
            for failure in self.failures:
                targets = ", ".join(f"`{t}`" for t in failure.targets)
                lines.append(f"- {targets} ({failure.kind}): {failure.cause}")
        else:
            lines.append(f"- no step failed; the run itself failed: {self.run_message}")
        if self.not_materialized:
            lines += ["", "## Planned but not materialized", ""]
            lines += [f"- `{key}`" for key in self.not_materialized]
        return "\n".join(lines) + "\n"

    def chat_text(self) -> str:
        lines = [self.headline(), f"Run: {self.run_url}"]
        if self.failed_targets:
            shown = self.failed_targets[:LISTED_IN_CHAT]
            more = len(self.failed_targets) - len(shown)
            lines.append("Failed: " + ", ".join(shown) + (f" (+{more} more)" if more else ""))
        if self.not_materialized:
            lines.append(f"Not materialized: {len(self.not_materialized)} asset(s)")
        text = "\n".join(lines)
        return text if len(text) <= CHAT_LIMIT else text[: CHAT_LIMIT - 1] + "…"


def already_announced(summary: FailureSummary) -> bool:
    """Every failure repeats what was announced once: a spent quota (``service_alerts``) or a
    refused login remembered from the step, in an earlier run, that failed on it first."""
    return bool(summary.failures) and all(
        f.kind == FailureKind.QUOTA_SPENT.value or (f.kind == FailureKind.AUTH.value and REMEMBERED in f.cause)
        for f in summary.failures
    )


def first_line(text: str | None, limit: int = 300) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return ""


def _step_failure(
    event: dg.DagsterEvent, targets: Mapping[str, tuple[str, ...]], failed_checks: Mapping[str, str]
) -> StepFailure:
    data = event.step_failure_data
    user = data.user_failure_data if data else None
    error = data.error if data else None
    step_key = event.step_key or "?"
    step_targets = targets.get(step_key, (step_key,))
    kind_value = user.metadata.get(FAILURE_KIND_KEY) if user else None
    if kind_value is not None:
        kind = str(kind_value.value)
    elif error is not None and error.cls_name == "DagsterAssetCheckFailedError":
        # The error only says "1 blocking asset check failed"; the check's own description says why.
        kind = CHECK_FAILED
        reasons = [failed_checks[t] for t in step_targets if t in failed_checks]
        if reasons:
            return StepFailure(step_key, step_targets, kind, first_line("; ".join(reasons)))
    else:
        kind = FailureKind.OTHER.value
    message = (user.description if user and user.description else None) or (error.message if error else "")
    # A dg.Failure's error message repeats its class path before the description.
    cause = first_line(message).removeprefix("dagster._core.definitions.events.Failure: ")
    return StepFailure(step_key, step_targets, kind, cause or "no error message")


def summarize_failure(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    failure_event: dg.DagsterEvent,
    step_failures: Sequence[dg.DagsterEvent],
    ui_url: str,
) -> FailureSummary:
    """Read the run's planned and materialized assets from the event log and classify each failed step."""

    def records(*types: dg.DagsterEventType):
        return [
            record.event_log_entry.dagster_event
            for record in instance.get_records_for_run(run.run_id, of_type=set(types)).records
            if record.event_log_entry.dagster_event is not None
        ]

    targets: dict[str, list[str]] = {}
    planned: list[str] = []
    for event in records(
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ):
        if event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            name = event.asset_key.to_user_string() if event.asset_key else event.step_key
            planned.append(name)
        else:
            check_data = event.asset_check_planned_data
            name = f"{check_data.asset_key.to_user_string()}:{check_data.check_name}"
        targets.setdefault(event.step_key, []).append(name)
    materialized = {
        event.asset_key.to_user_string()
        for event in records(dg.DagsterEventType.ASSET_MATERIALIZATION)
        if event.asset_key is not None
    }
    failed_checks = {}
    for event in records(dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = event.asset_check_evaluation_data
        if not evaluation.passed:
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            failed_checks[name] = evaluation.description or "check failed"
    frozen_targets = {k: tuple(v) for k, v in targets.items()}
    failures = tuple(_step_failure(event, frozen_targets, failed_checks) for event in step_failures)
    failed = {target for failure in failures for target in failure.targets}
    not_materialized = tuple(sorted({key for key in planned if key not in materialized and key not in failed}))
    return FailureSummary(
        run_id=run.run_id,
        job_name=run.job_name,
        partition=run.tags.get("dagster/partition"),
        run_url=f"{ui_url.rstrip('/')}/runs/{run.run_id}",
        failures=failures,
        not_materialized=not_materialized,
        run_message=first_line(failure_event.message),
    )


class FailureAlertResource(dg.ConfigurableResource):
    """Posts failure summaries to a Slack- or Discord-compatible incoming webhook."""

    webhook_url: str = Field(
        default="",
        description=f"{WEBHOOK_ENV_VAR}: incoming-webhook URL (secret; empty disables posting).",
    )
    ui_url: str = Field(
        default=DEFAULT_UI_URL, description="NH_DAGSTER_UI_URL: base URL of the Dagster UI for run links."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Seconds to wait for the webhook to answer.")

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url.strip())

    def post(self, text: str) -> str | None:
        """Post ``text``; returns None on success, else a one-line reason that never holds the URL."""
        if not self.enabled:
            return None
        if urllib.parse.urlsplit(self.webhook_url.strip()).scheme not in ("http", "https"):
            return f"{WEBHOOK_ENV_VAR} is not an http(s) URL"
        # Slack reads `text`, Discord reads `content`; each ignores the other key.
        body = json.dumps({"text": text, "content": text}).encode()
        request = urllib.request.Request(
            self.webhook_url.strip(),
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "neurohelix-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            reason = str(exc.reason)
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
            reason = f"{type(exc).__name__}: {exc}"
        return first_line(Redactor.from_env(extra=[self.webhook_url.strip()])(reason)) or "unknown error"


def alert_resource(settings: Settings) -> FailureAlertResource:
    """Wire the webhook through EnvVar only when it is set, so an unset variable is not a load error."""
    return FailureAlertResource(
        webhook_url=dg.EnvVar(WEBHOOK_ENV_VAR) if settings.alert_webhook_set else "",
        ui_url=settings.ui_url,
    )
