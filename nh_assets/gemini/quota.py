"""What Google says when a quota is used up, read from the 429 itself.

A 429 from the Gemini API carries ``google.rpc.QuotaFailure`` (which quotas were exceeded: a
``quotaId`` such as ``GenerateRequestsPerDayPerProjectPerModel-FreeTier``, the model in
``quotaDimensions``, the limit in ``quotaValue``) and ``google.rpc.RetryInfo`` (how long to
wait). A per-minute violation clears within the ``retryDelay``; a per-day one does not clear
until the quota day resets at midnight Pacific time, so asking again the same day only burns
time. The CLI 0.61.0 draws the same line (``classifyGoogleError``: a ``quotaId`` containing
``PerDay`` or ``Daily`` is terminal); this module draws it for the gate, which sees every 429
before the CLI does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
# Google resets daily quotas at midnight Pacific time (ai.google.dev/gemini-api/docs/rate-limits).
QUOTA_TIMEZONE = ZoneInfo("America/Los_Angeles")
_DURATION = re.compile(r"^\s*(?P<value>[0-9]*\.?[0-9]+)(?P<unit>ms|s)\s*$")
# The message repeats the violations for readers: "limit: 20, model: gemini-2.5-flash".
_MESSAGE_LIMIT = re.compile(r"limit:\s*(?P<limit>\d+),\s*model:\s*(?P<model>[\w.\-]+)")


@dataclass(frozen=True)
class QuotaViolation:
    quota_id: str
    model: str
    limit: int | None

    @property
    def per_day(self) -> bool:
        return "PerDay" in self.quota_id or "Daily" in self.quota_id


@dataclass(frozen=True)
class QuotaError:
    """One 429's account of itself."""

    violations: tuple[QuotaViolation, ...]
    retry_delay_s: float | None
    message: str

    def daily(self, model: str | None = None) -> QuotaViolation | None:
        """The per-day violation (for ``model`` when given), if the 429 names one."""
        for violation in self.violations:
            if violation.per_day and (model is None or violation.model in ("", model)):
                return violation
        return None


def parse_duration(text: str) -> float | None:
    """``"36s"``, ``"34.07s"``, ``"900ms"`` as seconds (protobuf Duration's JSON form)."""
    match = _DURATION.match(str(text))
    if not match:
        return None
    value = float(match.group("value"))
    return value / 1000 if match.group("unit") == "ms" else value


def _error_object(body: bytes) -> dict | None:
    try:
        doc = json.loads(body.decode("utf-8", errors="replace") or "null")
    except ValueError:
        return None
    if isinstance(doc, list) and doc:  # streamGenerateContent without alt=sse answers an array
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else None


def parse_quota_error(body: bytes) -> QuotaError | None:
    """The quota account of a 429 body, or None when the body is not a Google error object."""
    error = _error_object(body)
    if error is None:
        return None
    message = str(error.get("message") or "")
    violations: list[QuotaViolation] = []
    retry_delay: float | None = None
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == QUOTA_FAILURE:
            for violation in detail.get("violations") or []:
                if not isinstance(violation, dict):
                    continue
                dimensions = violation.get("quotaDimensions") or {}
                value = str(violation.get("quotaValue") or "")
                violations.append(
                    QuotaViolation(
                        quota_id=str(violation.get("quotaId") or ""),
                        model=str(dimensions.get("model") or "") if isinstance(dimensions, dict) else "",
                        limit=int(value) if value.isdigit() else None,
                    )
                )
        elif detail.get("@type") == RETRY_INFO:
            retry_delay = parse_duration(str(detail.get("retryDelay") or ""))
    stated = {m.group("model"): int(m.group("limit")) for m in _MESSAGE_LIMIT.finditer(message)}
    violations = [
        v if v.limit is not None or v.model not in stated else QuotaViolation(v.quota_id, v.model, stated[v.model])
        for v in violations
    ]
    return QuotaError(tuple(violations), retry_delay, message)


def quota_day_reset(now: datetime) -> datetime:
    """The next midnight in Pacific time after ``now`` (an aware datetime), in UTC."""
    local = now.astimezone(QUOTA_TIMEZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=QUOTA_TIMEZONE)
    return midnight.astimezone(ZoneInfo("UTC"))
