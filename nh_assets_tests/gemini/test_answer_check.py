"""Answers judged by what came back: finish reasons and the model that wrote them (in-process)."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from nh_assets.gemini.answer_check import AnswerSeen, judge_answer_end
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.prompts.checks import MODEL_CHECK, answered_by_allowed, model_check_result

pytestmark = pytest.mark.fast


def _sse(*chunks: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def _seen(body: bytes) -> AnswerSeen:
    seen = AnswerSeen()
    seen.read(body)
    return seen


def test_a_stream_is_read_for_its_finish_reason_text_and_model_version():
    seen = _seen(_sse(
        {"candidates": [{"content": {"parts": [{"text": "Hello "}]}}], "modelVersion": "gemini-2.5-flash"},
        {"candidates": [{"content": {"parts": [{"text": "world", "thought": False}]}, "finishReason": "STOP"}],
         "modelVersion": "gemini-2.5-flash"},
    ))
    assert seen.finish_reasons == {"STOP": 1} and seen.text_chars == len("Hello") + len("world")
    assert seen.model_versions == {"gemini-2.5-flash": 2} and seen.problem() is None


@pytest.mark.parametrize(
    "body, reason",
    [
        (_sse({"candidates": [{"finishReason": "SAFETY", "safetyRatings": []}]}), "SAFETY"),
        (json.dumps([{"candidates": [{"finishReason": "RECITATION"}]}]).encode(), "RECITATION"),
        (json.dumps({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}).encode(), "PROHIBITED_CONTENT"),
        (json.dumps({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]}).encode(), "MAX_TOKENS"),
    ],
)
def test_an_answer_that_is_not_whole_names_its_reason(body, reason):
    assert _seen(body).problem() == reason


@pytest.mark.parametrize("reason, kind", [("SAFETY", FailureKind.BLOCKED), ("MAX_TOKENS", FailureKind.CUT_SHORT)])
def test_blocked_and_cut_short_answers_fail_whatever_the_exit_code(reason, kind):
    # The 0.61.0 CLI's JSON for a blocked stream: the response, an INVALID_STREAM error, exit 0.
    doc = {"response": "", "error": {"type": "INVALID_STREAM", "message": "The model response was blocked due to safety settings."}}
    with pytest.raises(GeminiFailure) as failed:
        judge_answer_end(doc, _seen(_sse({"candidates": [{"finishReason": reason}]})))
    assert failed.value.kind is kind and reason in failed.value.cause and not kind.retryable


def test_an_empty_answer_and_a_loop_are_warnings_left_to_the_contract():
    doc = {
        "response": "",
        "error": {"type": "INVALID_STREAM", "message": "The model returned an empty response with no text or thoughts."},
        "warnings": ["Loop detected, stopping execution"],
    }
    warnings = judge_answer_end(doc, _seen(_sse({"candidates": [{"finishReason": "STOP"}]})))
    assert warnings == ["Loop detected, stopping execution", f"INVALID_STREAM: {doc['error']['message']}"]


class _Row:
    prompt_id, model, fallback_model, uses_llm, line = "ai_ecosystem_watch", "gemini-2.5-flash", None, True, 5


@pytest.mark.parametrize(
    "answered_by, fallback, allowed",
    [
        ("gemini-2.5-flash", None, True),
        ("gemini-2.5-flash-001", None, True),  # a pinned version of the same model
        ("gemini-2.5-flash-preview-05-20", None, True),
        ("gemini-2.5-flash-lite", None, False),  # another model, however alike its name
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite", True),  # unless the registry allowed it
        ("gemini-2.5-pro", "gemini-2.5-flash-lite", False),
    ],
)
def test_the_answer_must_come_from_the_rows_model_or_its_fallback(answered_by, fallback, allowed):
    row = _Row()
    row.fallback_model = fallback
    assert answered_by_allowed(row, answered_by) is allowed
    result = model_check_result(row, "2026-11-22", answered_by)
    assert result.check_name == MODEL_CHECK and result.passed is allowed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert ("not by gemini-2.5-flash" in result.description) is not allowed
