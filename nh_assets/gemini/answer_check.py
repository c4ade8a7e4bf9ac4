"""How an answer ended, as the API said it: read from a copy of each response at the gate.

The CLI prints ``response`` text and exits 0 for answers that are not answers: a stream that
ended for SAFETY or RECITATION, hit MAX_TOKENS, or carried no text at all (0.61.0 then puts an
``error`` of type ``INVALID_STREAM`` beside the response, or only ``warnings`` for a detected
loop). The gate sees every response's ``finishReason``, ``promptFeedback.blockReason`` and
``modelVersion`` on its way through, so the resource can judge a call by what came back rather
than by the exit code. Responses are forwarded unchanged; this reads a copy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from nh_assets.gemini.answer_body import answer_documents
from nh_assets.gemini.failures import FailureKind, GeminiFailure

# finishReason values that mean the text is not a whole answer (google.ai.generativelanguage
# Candidate.FinishReason); STOP is the normal end, FINISH_REASON_UNSPECIFIED says nothing.
BLOCKED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE", "OTHER"}
CUT_SHORT = {"MAX_TOKENS", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"}


def answer_chunks(body: bytes) -> list[dict]:
    """The JSON chunks of one generation answer, whatever its shape."""
    return [chunk for chunk in answer_documents(body) if isinstance(chunk, dict)]


@dataclass
class AnswerSeen:
    """What the responses of one call said about themselves, counted over its requests."""

    finish_reasons: Counter = field(default_factory=Counter)
    model_versions: Counter = field(default_factory=Counter)
    text_chars: int = 0

    def read(self, body: bytes) -> None:
        for chunk in answer_chunks(body):
            if chunk.get("modelVersion"):
                self.model_versions[str(chunk["modelVersion"])] += 1
            block = (chunk.get("promptFeedback") or {}).get("blockReason")
            if block:
                self.finish_reasons[str(block)] += 1
            for candidate in chunk.get("candidates") or []:
                if not isinstance(candidate, dict):
                    continue
                if candidate.get("finishReason"):
                    self.finish_reasons[str(candidate["finishReason"])] += 1
                for part in (candidate.get("content") or {}).get("parts") or []:
                    if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
                        self.text_chars += len(part["text"].strip())

    def __add__(self, other: "AnswerSeen") -> "AnswerSeen":
        total = AnswerSeen()
        total.merge(self)
        total.merge(other)
        return total

    def merge(self, other: "AnswerSeen") -> None:
        self.finish_reasons.update(other.finish_reasons)
        self.model_versions.update(other.model_versions)
        self.text_chars += other.text_chars

    def problem(self) -> str | None:
        """The finish reason that says the answer is not whole, if any response ended so."""
        for reason in sorted(self.finish_reasons):
            if reason in BLOCKED or reason in CUT_SHORT:
                return reason
        return None


def judge_answer_end(doc: dict, seen: AnswerSeen) -> list[str]:
    """Raise ``GeminiFailure`` for an answer the API withheld or cut short, whatever the exit code;
    return the warnings worth keeping. An empty answer is left to the output contract, which asks
    again (its re-asks are this kind's retries)."""
    error = doc.get("error") if isinstance(doc.get("error"), dict) else {}
    message = str(error.get("message") or "").strip()
    reason = seen.problem()
    if reason in BLOCKED:
        raise GeminiFailure(FailureKind.BLOCKED, f"the API ended the answer with finishReason {reason}: {message or 'no text'}")
    if reason in CUT_SHORT:
        raise GeminiFailure(FailureKind.CUT_SHORT, f"the API ended the answer with finishReason {reason}: {message or 'cut short'}")
    warnings = [str(w) for w in doc.get("warnings") or [] if str(w).strip()]
    if error:
        warnings.append(f"{error.get('type') or 'error'}: {message}")
    return warnings
