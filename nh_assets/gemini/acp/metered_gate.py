"""The rate gate of a warm CLI, which also reads each answer's token usage on its way through.

A one-shot call learns its usage from the CLI's ``stats.models``. In ACP mode the CLI reports
only the main model's input and output tokens (``_meta.quota`` of ``session/prompt``, 0.61.0):
not the search model of a ``google_web_search`` loop, not thinking tokens, not request counts.
Every request already crosses the gate, so the gate reads the ``usageMetadata`` of each
generation answer (the last one of a stream is the request's total) and keeps the same figures
per model as the CLI's stats: requests, input (prompt minus cached, as the CLI counts it),
output, thinking and total. The bytes are forwarded unchanged; reading them costs a JSON parse
per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from nh_assets.gemini.answer_check import answer_chunks
from nh_assets.gemini.api_gate import _GENERATION, ApiGate, GateGuard, GateLedger, _model_of
from nh_assets.gemini.usage import ModelUsage


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
    """The usage of one generation answer: the last chunk carrying ``usageMetadata`` wins."""
    found = None
    for chunk in answer_chunks(body):
        found = _usage_of(chunk) or found
    return found


class MeteredGate(ApiGate):
    """An ``ApiGate`` that also records, per prompt, the usage each answer reports."""

    def __init__(self, upstream: str, take_slot: Callable[[], float], guard: GateGuard | None = None):
        self._usage: dict[str, ModelUsage] = {}
        super().__init__(upstream, take_slot, guard)

    def begin(self) -> None:
        super().begin()
        with self._lock:
            self._usage = {}

    def usage(self) -> dict[str, ModelUsage]:
        with self._lock:
            return dict(self._usage)

    def _count(self, path_model: str, answer: bytes) -> None:
        found = usage_of_answer(answer)
        if found is None:
            return
        model, usage = found
        key = model or path_model
        with self._lock:
            self._usage[key] = self._usage.get(key, ModelUsage()) + usage

    def _handler(self):
        base = super()._handler()
        gate = self

        class Metered(base):  # type: ignore[misc, valid-type]
            def _answer(self, status: int, headers: list[tuple[str, str]], chunks: Iterable[bytes]) -> None:
                if status != 200 or not _GENERATION.search(self.path):
                    super()._answer(status, headers, chunks)
                    return
                seen: list[bytes] = []
                path_model = _model_of(self.path, b"")

                def tee() -> Iterator[bytes]:
                    for chunk in chunks:
                        seen.append(chunk)
                        yield chunk
                    # Counted before the body's end is written: the CLI cannot finish its turn (and
                    # the pool cannot read this prompt's usage) until it has read that end. Counted
                    # after it, a busy machine let the pool answer first and lose the figures.
                    gate._count(path_model, b"".join(seen))

                super()._answer(status, headers, tee())

        return Metered


def merged(gates: Iterable[MeteredGate]) -> tuple[GateLedger, dict[str, ModelUsage]]:
    """One prompt's ledger and usage over every gate of its process."""
    ledger, usage = GateLedger(), {}
    for gate in gates:
        own = gate.ledger()
        ledger.requests.update(own.requests)
        ledger.waited_s += own.waited_s
        ledger.refusal = ledger.refusal or own.refusal
        ledger.answered_by = own.answered_by or ledger.answered_by
        ledger.seen.merge(own.seen)
        for model, entry in gate.usage().items():
            usage[model] = usage.get(model, ModelUsage()) + entry
    return ledger, usage
