"""The output contract: an answer becomes an artifact or a list of complaints, before anything is written.

``judge_answer(format, answer)`` applies what holds for every model answer, then the format's own
``OutputFormat.assess``, and returns a ``Judged``. Two kinds
of complaint exist, because they lead to different ends once the re-asks are used up:

- ``problems``: the answer cannot be used at all (empty, a refusal, Gemini CLI error text, JSON
  that does not parse or breaks the schema, HTML with nothing left once sanitized). There is no
  artifact; the previous good one stays on disk.
- ``gaps``: the answer is usable but incomplete (a required section left out). The artifact is
  built with the gap noted in it, and published if the re-asks do not close it.

Both are phrased for the model: the complaints go back to it verbatim in the re-ask prompt, the
way structured-output libraries retry on a validation error.
"""

from __future__ import annotations

import re

from nh_assets.formats.base import Answer, Judged, OutputFormat, rejected
from nh_assets.formats.cleanliness import CLI_ERROR_MARKERS

# Refusals open the answer and stay short; a long answer that happens to contain "I can't" in its
# analysis is an answer. Both conditions are needed to keep real reports clear of the rule.
REFUSAL_MAX_CHARS = 800
_REFUSAL_OPENING = re.compile(
    r"^\W*(?:(?:I['’]?m|I am) sorry|sorry|I apologi[sz]e|unfortunately|as an AI(?: language model)?)\b[^\n]{0,200}?"
    r"\b(?:can(?:no|['’])t|cannot|unable|not able|won['’]?t|will not|do not have)\b"
    r"|^\W*I (?:can(?:no|['’])t|cannot|am unable to|am not able to|won['’]?t|will not)\b",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) <= REFUSAL_MAX_CHARS and bool(_REFUSAL_OPENING.search(stripped))


def answer_problems(text: str) -> list[str]:
    """What makes any model answer unusable, whatever its format."""
    stripped = text.strip()
    if not stripped:
        return ["the answer was empty — write the full answer this time"]
    if is_refusal(stripped):
        first = stripped.splitlines()[0][:160]
        return [
            f"the answer was a refusal ({first!r}) — this is a routine research summary of public "
            "material; write the answer as asked"
        ]
    found = [marker for marker in CLI_ERROR_MARKERS if marker in text]
    if found:
        return [
            f"the answer holds tool or API error text ({', '.join(repr(m) for m in found)}) — leave "
            "error messages out and answer from the material you have"
        ]
    return []


def judge_answer(fmt: OutputFormat, answer: Answer) -> Judged:
    """The whole contract for one answer: the rules for every answer, then the format's own."""
    problems = answer_problems(answer.text) if fmt.uses_model else []
    return rejected(*problems) if problems else fmt.assess(answer)
