"""What one call cost: API requests and tokens, per model and summed.

A call can use several models: with ``google_web_search`` the main model asks for a search, the
CLI runs it on its ``web-search`` model and sends the result back to the main model. The rate
gate reads each generation answer's ``usageMetadata`` (``usage_of_answer``) and keeps the same
figures per model as the CLI's own ``stats.models`` (requests, input as prompt minus cached,
output, thinking, total), so a day's real cost can be read per model from the materializations
whichever transport served it. The CLI's own report (``usage_by_model``, the warm CLI's
``_meta.quota``) is only a cross-check (``mismatches``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from nh_assets.gemini.answer_body import answer_documents


@dataclass(frozen=True)
class ModelUsage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "ModelUsage") -> "ModelUsage":
        return ModelUsage(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.requests, self.input_tokens, self.output_tokens, self.thinking_tokens, self.total_tokens)

    @classmethod
    def from_dict(cls, entry: Mapping) -> "ModelUsage":
        """The inverse of ``as_dict`` (the warm CLI service sends usage to the step in that shape)."""
        return cls(
            requests=int(entry.get("requests", 0)), input_tokens=int(entry.get("input", 0)),
            output_tokens=int(entry.get("output", 0)), thinking_tokens=int(entry.get("thinking", 0)),
            total_tokens=int(entry.get("total", 0)),
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "input": self.input_tokens,
            "output": self.output_tokens,
            "thinking": self.thinking_tokens,
            "total": self.total_tokens,
        }


def _int(value: object) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def usage_by_model(stats: Mapping) -> dict[str, ModelUsage]:
    """``stats.models`` of the CLI's JSON output (0.61.0), one entry per model used."""
    usage = {}
    for model, entry in (stats.get("models") or {}).items():
        tokens = entry.get("tokens") or {}
        usage[str(model)] = ModelUsage(
            requests=_int((entry.get("api") or {}).get("totalRequests")),
            input_tokens=_int(tokens.get("input", tokens.get("prompt"))),
            output_tokens=_int(tokens.get("candidates")),
            thinking_tokens=_int(tokens.get("thoughts")),
            total_tokens=_int(tokens.get("total")),
        )
    return usage


def _usage_of(chunk: dict) -> tuple[str | None, ModelUsage] | None:
    meta = chunk.get("usageMetadata")
    if not isinstance(meta, dict):
        return None

    def count(name: str) -> int:
        try:
            return int(meta.get(name) or 0)
        except (TypeError, ValueError):
            return 0

    prompt, cached = count("promptTokenCount"), count("cachedContentTokenCount")
    usage = ModelUsage(
        requests=1,
        input_tokens=max(0, prompt - cached),
        output_tokens=count("candidatesTokenCount"),
        thinking_tokens=count("thoughtsTokenCount"),
        total_tokens=count("totalTokenCount"),
    )
    return (chunk.get("modelVersion") or None), usage


def usage_of_answer(body: bytes) -> tuple[str | None, ModelUsage] | None:
    """The usage of one generation answer: a JSON object, a JSON array of stream chunks, or
    server-sent events (``alt=sse``); the last chunk carrying ``usageMetadata`` wins."""
    found = None
    for chunk in answer_documents(body):
        if isinstance(chunk, dict):
            found = _usage_of(chunk) or found
    return found


def mismatches(
    read: Mapping[str, ModelUsage], reported: Mapping[str, ModelUsage], *, admitted: Mapping[str, int]
) -> list[str]:
    """What the CLI says it used against what crossed the rate gate, per model: requests admitted
    (when the CLI counts them: ``stats.models`` does, the warm CLI's ``_meta.quota`` does not)
    and output tokens."""
    counts_requests = any(entry.requests for entry in reported.values())
    found = []
    for model in sorted(set(reported) | (set(admitted) if counts_requests else set())):
        said, seen = reported.get(model, ModelUsage()), read.get(model, ModelUsage())
        if counts_requests and said.requests != admitted.get(model, 0):
            found.append(
                f"{model}: {admitted.get(model, 0)} request(s) crossed the rate gate, the CLI reports {said.requests}"
            )
        if said.output_tokens != seen.output_tokens:
            found.append(f"{model}: the CLI reports {said.output_tokens} output tokens, the gate read {seen.output_tokens}")
    return found


def total(usage: Mapping[str, ModelUsage]) -> ModelUsage:
    summed = ModelUsage()
    for entry in usage.values():
        summed = summed + entry
    return summed


def usage_metadata(usage: Mapping[str, ModelUsage], *, gate_requests: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    """Summed figures as ints (the asset's plots), the split per model as JSON.

    ``gemini.api_requests`` is what crossed the rate gate, the number the quota sees; the
    requests answered with usage, per model, are kept beside it in ``gemini.models``.
    """
    summed = total(usage)
    return {
        "gemini.api_requests": dg.MetadataValue.int(sum(gate_requests.values())),
        "gemini.input_tokens": dg.MetadataValue.int(summed.input_tokens),
        "gemini.output_tokens": dg.MetadataValue.int(summed.output_tokens),
        "gemini.thinking_tokens": dg.MetadataValue.int(summed.thinking_tokens),
        "gemini.total_tokens": dg.MetadataValue.int(summed.total_tokens),
        "gemini.models": dg.MetadataValue.json(
            {
                model: {**entry.as_dict(), "gate_requests": int(gate_requests.get(model, 0))}
                for model, entry in sorted(usage.items())
            }
        ),
    }
