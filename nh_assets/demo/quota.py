"""The fake API's quotas and credentials, answered with the bodies Google sends.

Google counts generation requests per project and model, in a minute window and in a quota
day that ends at midnight Pacific time; a request over either limit gets 429
``RESOURCE_EXHAUSTED`` whose ``details`` hold ``google.rpc.Help``, ``google.rpc.QuotaFailure``
(``quotaMetric``, ``quotaId``, ``quotaDimensions`` with location and model, ``quotaValue``) and
``google.rpc.RetryInfo`` — the per-day answer included, with a delay of seconds, which is why a
client that trusts the delay keeps asking. Refused requests are not counted. Bodies as reported
by users of the free tier in 2025-2026 (e.g. googleapis/python-genai#2044, continuedev/continue
issues with "limit: 0, model: gemini-2.0-flash"). Expired or refused credentials get 401
``UNAUTHENTICATED`` or 403 ``PERMISSION_DENIED`` with an ``ErrorInfo``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
PER_DAY = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
PER_MINUTE = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
_HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
}


def quota_body(model: str, quota_id: str, limit: int, retry_delay_s: float) -> dict[str, Any]:
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
        f"head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: {METRIC}, limit: {limit}, "
        f"model: {model}\nPlease retry in {retry_delay_s:.9f}s."
    )
    violation = {
        "quotaMetric": METRIC,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": str(limit),
    }
    return {
        "error": {
            "code": 429,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                _HELP,
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{int(retry_delay_s)}s"},
            ],
        }
    }


def auth_body(status: int) -> dict[str, Any]:
    if status == 401:
        message = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
        reason, name = "ACCESS_TOKEN_EXPIRED", "UNAUTHENTICATED"
    else:
        message = "Permission denied: Consumer has been suspended."
        reason, name = "CONSUMER_SUSPENDED", "PERMISSION_DENIED"
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return {"error": {"code": status, "message": message, "status": name, "details": [info]}}


class QuotaCounter:
    """Per-model request counts in the minute window and the Pacific quota day."""

    def __init__(self, per_day: dict[str, int] | None = None, per_minute: dict[str, int] | None = None):
        self.per_day = dict(per_day or {})
        self.per_minute = dict(per_minute or {})
        self._lock = threading.Lock()
        self._days: dict[tuple[str, str], int] = defaultdict(int)
        self._minutes: dict[str, deque[float]] = defaultdict(deque)

    def take(self, model: str) -> dict[str, Any] | None:
        """Count one request, or the 429 body that refuses it (and is not counted)."""
        now = time.time()
        day = datetime.now(timezone.utc).astimezone(PACIFIC).date().isoformat()
        with self._lock:
            window = self._minutes[model]
            while window and window[0] <= now - 60:
                window.popleft()
            if model in self.per_day and self._days[(model, day)] >= self.per_day[model]:
                return quota_body(model, PER_DAY, self.per_day[model], 36.090491215)
            if model in self.per_minute and len(window) >= self.per_minute[model]:
                delay = max(1.0, 60 - (now - window[0])) if window else 60.0
                return quota_body(model, PER_MINUTE, self.per_minute[model], delay)
            self._days[(model, day)] += 1
            window.append(now)
        return None
