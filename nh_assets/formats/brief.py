"""``brief``: the morning brief, three sentences for a reader with a minute.

The three sentences are, in order, the day's main theme, the priority signal and the critical
shift. A model asked for three sentences writes four, a list, a heading or a preamble often
enough that the count is the contract: what is safe to repair is repaired (list markers,
emphasis, a heading line), a wrong number of sentences is sent back with the count. The
artifact is one sentence per line, so the site and the notification read it without parsing
prose again; a demo artifact carries the demo banner on a first ``>`` line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nh_assets.formats.base import DEMO_BANNER, Answer, Built, OutputFormat, Rule, StructuredOutputError, Verdict

BRIEF_PARTS = ("the day's main theme", "the priority signal", "the critical shift")
BRIEF_CHECK = "brief_is_three_sentences"
MAX_WORDS = 60  # per sentence: a brief longer than three short sentences is a summary
_FENCE = re.compile(r"^```\w*\s*$", re.M)
_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_BOUNDARY = re.compile(r"[.!?]+[\"”’)\]]*\s+")
# Words a period ends without ending the sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs inc ltd corp co dr mr ms mrs st no approx al fig u.s u.k e.u jan feb mar apr jun jul aug "
    "sep sept oct nov dec".split()
)


def _clean(text: str) -> str:
    lines = []
    for line in _FENCE.sub("", text).splitlines():
        line = _MARKER.sub("", line).replace("**", "").replace("__", "").strip()
        if line:
            lines.append(line)
    # A heading ("# Morning brief", "**Brief**") is a short line with no full stop above the prose.
    while len(lines) > 1 and (lines[0].startswith("#") or (len(lines[0].split()) <= 8 and lines[0][-1] not in ".!?")):
        lines.pop(0)
    return " ".join(" ".join(lines).split())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: a boundary is . ! or ? then space then a capital, digit or quote,
    unless the period closes an abbreviation or an initial."""
    out, start = [], 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        following = text[end : end + 1]
        before = text[start : match.start() + 1].rstrip(".").split()
        last = before[-1].casefold().strip("(\"“") if before else ""
        if not following or not (following.isupper() or following.isdigit() or following in "\"“("):
            continue
        if text[match.start()] == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue
        out.append(text[start:end].strip())
        start = end
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def brief_sentences(text: str) -> list[str]:
    """The sentences of a brief artifact (the demo banner line left out)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(">")]


def parse_brief(text: str) -> list[str]:
    sentences = split_sentences(_clean(text))
    if len(sentences) != len(BRIEF_PARTS):
        raise StructuredOutputError(
            f"the answer has {len(sentences)} sentence{'s' * (len(sentences) != 1)} — write exactly three, "
            f"one each for {', '.join(BRIEF_PARTS[:-1])} and {BRIEF_PARTS[-1]}, and nothing else"
        )
    long = [i for i, s in enumerate(sentences, 1) if len(s.split()) > MAX_WORDS]
    if long:
        raise StructuredOutputError(
            f"sentence {long[0]} has {len(sentences[long[0] - 1].split())} words — keep each under {MAX_WORDS}"
        )
    if not sentences[-1].endswith((".", "!", "?", "”", '"', ")")):
        raise StructuredOutputError("the last sentence is unfinished — end it with a full stop")
    return sentences


def judge_brief(text: str) -> Verdict:
    sentences = brief_sentences(text)
    if len(sentences) != len(BRIEF_PARTS):
        return Verdict(False, f"the brief has {len(sentences)} sentence line(s), not {len(BRIEF_PARTS)}")
    return Verdict(True, f"{len(BRIEF_PARTS)} sentences, {sum(len(s.split()) for s in sentences)} words")


class Brief(OutputFormat):
    name = "brief"
    extension = ".txt"
    kind = "text"
    response_line = "text"
    instruction = (
        "Answer with exactly three sentences of plain prose and nothing else: first the day's main theme, "
        "then the priority signal, then the critical shift. No heading, no list, no markdown, no preamble; "
        f"each sentence under {MAX_WORDS} words."
    )

    def header_lines(self) -> list[str]:
        return [f"SENTENCES: {'; '.join(BRIEF_PARTS)}"]

    def build(self, answer: Answer) -> Built:
        sentences = parse_brief(answer.text)
        banner = [f"> {DEMO_BANNER}"] if answer.demo else []
        return Built(("\n".join([*banner, *sentences]) + "\n").encode())

    def rules(self) -> Sequence[Rule]:
        description = "Three sentences, one per line: theme, priority signal, critical shift."
        return (Rule(BRIEF_CHECK, description, lambda text, _day: judge_brief(text)),)


BRIEF = Brief()
