"""Reading Google's 429s, and the shared memory of spent quotas and refused credentials (in-process)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest

from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.demo.quota import QuotaCounter
from nh_assets.gemini.rate_gate import GateRefusal
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.quota import parse_duration, parse_quota_error, quota_day_reset
from nh_assets.gemini.service_memory import AUTH, SPENT, MemoryGuard, SQLiteMemory, credentials_fingerprint
from nh_assets_tests.support.fakes import gemini_config

pytestmark = pytest.mark.fast

# As reported by a free-tier user (googleapis/python-genai#2044), pretty-printed as Google sends it.
GOOGLE_DAILY_AND_MINUTE = json.dumps({
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. "
        "\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, "
        "limit: 20, model: gemini-2.0-flash\nPlease retry in 47.3s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                 "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                 "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"}},
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                 "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                 "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"}},
            ]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "47s"},
        ],
    }
}, indent=2).encode()


def test_a_daily_violation_is_read_with_its_model_and_the_limit_the_message_states():
    quota = parse_quota_error(GOOGLE_DAILY_AND_MINUTE)
    assert quota is not None and quota.retry_delay_s == 47.0
    daily = quota.daily("gemini-2.0-flash")
    assert daily is not None and daily.quota_id.startswith("GenerateRequestsPerDay") and daily.limit == 20
    assert quota.daily("gemini-2.5-pro") is None  # another model's quota says nothing of this one
    assert [v.per_day for v in quota.violations] == [True, False]


def test_a_minute_violation_is_not_daily_and_keeps_its_delay():
    body = json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "x", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
            {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
             "quotaDimensions": {"model": "gemini-2.5-flash"}, "quotaValue": "10"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "900ms"}]}}).encode()
    quota = parse_quota_error(body)
    assert quota.daily() is None and quota.retry_delay_s == 0.9 and quota.violations[0].limit == 10


@pytest.mark.parametrize("body", [b"", b"not json", b'{"error": "text"}', b"[]", b'{"candidates": []}'])
def test_bodies_that_are_not_google_errors_give_nothing(body):
    assert parse_quota_error(body) is None


@pytest.mark.parametrize("text, seconds", [("36s", 36.0), ("34.074824224s", 34.074824224), ("900ms", 0.9), ("soon", None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "now, reset",
    [
        # 23:30 UTC on 3 Dec is 15:30 in Los Angeles (PST): the day ends at 08:00 UTC on 4 Dec.
        (datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc), datetime(2026, 12, 4, 8, tzinfo=timezone.utc)),
        # 07:59 UTC on 4 Dec is still 3 Dec in Los Angeles.
        (datetime(2026, 12, 4, 7, 59, tzinfo=timezone.utc), datetime(2026, 12, 4, 8, tzinfo=timezone.utc)),
        # Summer time (PDT, UTC-7).
        (datetime(2026, 7, 1, 12, tzinfo=timezone.utc), datetime(2026, 7, 2, 7, tzinfo=timezone.utc)),
    ],
)
def test_the_quota_day_resets_at_midnight_pacific(now, reset):
    assert quota_day_reset(now) == reset


def test_the_fake_counts_per_model_and_answers_google_bodies_over_the_limit():
    counter = QuotaCounter(per_day={"gemini-2.5-flash": 2}, per_minute={"gemini-2.5-pro": 1})
    assert counter.take("gemini-2.5-flash") is None and counter.take("gemini-2.5-flash") is None
    daily = parse_quota_error(json.dumps(counter.take("gemini-2.5-flash")).encode())
    assert daily.daily("gemini-2.5-flash").limit == 2 and daily.retry_delay_s == 36
    assert counter.take("gemini-3-flash-preview") is None  # other models are free
    assert counter.take("gemini-2.5-pro") is None
    minute = parse_quota_error(json.dumps(counter.take("gemini-2.5-pro")).encode())
    assert minute.daily() is None and minute.violations[0].limit == 1 and 1 <= minute.retry_delay_s <= 60


def test_the_fake_server_answers_429_and_401_over_http():
    with FakeGeminiAPI(quotas=QuotaCounter(per_day={"gemini-2.5-flash": 0})) as api:
        request = urllib.request.Request(
            f"{api.base_url}/v1beta/models/gemini-2.5-flash:generateContent", data=b'{"contents": []}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        assert raised.value.code == 429
        assert parse_quota_error(raised.value.read()).daily("gemini-2.5-flash").limit == 0
    with FakeGeminiAPI(auth_status=401) as api:
        request = urllib.request.Request(
            f"{api.base_url}/v1beta/models/gemini-2.5-pro:generateContent", data=b'{"contents": []}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        assert raised.value.code == 401 and json.loads(raised.value.read())["error"]["status"] == "UNAUTHENTICATED"


def test_the_first_writer_wins_and_an_entry_expires(tmp_path):
    one, other = SQLiteMemory(tmp_path / "m.sqlite"), SQLiteMemory(tmp_path / "m.sqlite")  # two processes' views
    far = datetime(2099, 1, 1, tzinfo=timezone.utc).timestamp()
    assert one.remember(SPENT, "gemini-2.5-flash", far, "first cause")
    assert not other.remember(SPENT, "gemini-2.5-flash", far, "second cause")
    assert other.recall(SPENT, "gemini-2.5-flash") == ("first cause", far)
    assert other.recall(SPENT, "gemini-2.5-pro") is None
    assert one.remember(AUTH, "abc", 1.0, "long ago")  # already expired
    assert other.recall(AUTH, "abc") is None
    assert other.remember(AUTH, "abc", far, "today")  # an expired entry is replaced
    assert one.recall(AUTH, "abc") == ("today", far)


def test_the_guard_refuses_a_spent_model_and_names_model_limit_and_reset(tmp_path):
    guard = MemoryGuard(SQLiteMemory(tmp_path / "m.sqlite"), "fp")
    guard.observe("gemini-2.0-flash", 429, parse_quota_error(GOOGLE_DAILY_AND_MINUTE))
    with pytest.raises(GateRefusal) as refused:
        guard.admit("gemini-2.0-flash")
    assert refused.value.kind is FailureKind.QUOTA_SPENT
    cause = str(refused.value)
    assert "gemini-2.0-flash" in cause and "limit 20" in cause and "America/Los_Angeles" in cause
    guard.admit("gemini-2.5-pro")  # other models are still asked
    with pytest.raises(GeminiFailure) as failed:
        guard.fail_if_refused("gemini-2.0-flash")
    assert failed.value.kind is FailureKind.QUOTA_SPENT and not failed.value.kind.retryable


def test_a_refused_credential_is_remembered_until_it_changes(tmp_path):
    memory = SQLiteMemory(tmp_path / "m.sqlite")
    old = credentials_fingerprint({"GEMINI_API_KEY": "old-key", "HOME": str(tmp_path)})
    new = credentials_fingerprint({"GEMINI_API_KEY": "new-key", "HOME": str(tmp_path)})
    assert old != new and "old-key" not in old
    MemoryGuard(memory, old).observe("gemini-2.5-flash", 401, None)
    with pytest.raises(GeminiFailure) as failed:
        MemoryGuard(memory, old).fail_if_refused("gemini-2.5-flash")
    assert failed.value.kind is FailureKind.AUTH and "401" in failed.value.cause
    MemoryGuard(memory, new).fail_if_refused("gemini-2.5-flash")  # new credentials are tried
    assert "old-key" not in (tmp_path / "m.sqlite").read_bytes().decode("latin-1")


def test_a_per_minute_429_is_retried_after_the_delay_google_gave(tmp_path):
    from nh_assets.gemini.resource import GeminiCLIResource

    guard = MemoryGuard(SQLiteMemory(tmp_path / "m.sqlite"), "fp")
    minute = parse_quota_error(json.dumps(QuotaCounter(per_minute={"gemini-2.5-flash": 0}).take("gemini-2.5-flash")).encode())
    failure = guard.learn(GeminiFailure(FailureKind.RATE_LIMIT, "exit 173: quota"), [("gemini-2.5-flash", minute)])
    resource = GeminiCLIResource(
        config=gemini_config(tmp_path, rate_limit_db=str(tmp_path / "b.sqlite"), workdir_root=str(tmp_path), rate_limit_backoff_s=120)
    )
    wait = resource.backoff_seconds(failure, retry_number=2)
    assert minute.retry_delay_s <= wait <= minute.retry_delay_s + 2  # not 120 s x 4
    guard.fail_if_refused("gemini-2.5-flash")  # a minute's limit spends nothing for the day


def test_no_child_cli_waits_for_a_browser(tmp_path):
    from nh_assets.gemini.resource import GeminiCLIResource

    config = gemini_config(tmp_path, rate_limit_db=str(tmp_path / "b.sqlite"), workdir_root=str(tmp_path))
    env = GeminiCLIResource(config=config)._child_env()
    assert env["NO_BROWSER"] == "true"
