"""What one CLI call cost: API requests and tokens, per model and summed.

A call can use several models: with ``google_web_search`` the main model asks for a search, the
CLI runs it on its ``web-search`` model (``gemini-3-flash-preview`` in 0.61.0) and sends the
result back to the main model. The CLI reports each model under ``stats.models`` with
``api.totalRequests`` and ``tokens``; this module keeps that split, so a day's real cost can be
read per model from the materializations, and sums it for the plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg


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
        """The inverse of ``as_dict`` (the warm pool sends usage to the step in that shape)."""
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


def total(usage: Mapping[str, ModelUsage]) -> ModelUsage:
    summed = ModelUsage()
    for entry in usage.values():
        summed = summed + entry
    return summed


def usage_metadata(usage: Mapping[str, ModelUsage], *, gate_requests: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    """Summed figures as ints (the asset's plots), the split per model as JSON.

    ``gemini.api_requests`` is what crossed the rate gate, the number the quota sees; the CLI's
    own count per model is kept beside it in ``gemini.models``.
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
