"""What a degraded artifact says about itself: the inputs it was built without and the sections it lacks.

A day is published even when a prompt failed or the model left a section out, so the artifact
must say so where readers look: in its text, as marked blockquote lines under the title, and
from there in the site payload (``missing_inputs``, ``missing_sections``). The markdown format
writes the lines, the payload format reads them back; keeping both directions in this module is
what makes the round trip safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_INPUT_LINE = re.compile(r"^> \*\*Missing input:\*\* `(?P<id>[^`]+)` — (?P<reason>.+)$", re.MULTILINE)
_SECTION_LINE = re.compile(r"^> \*\*Missing section:\*\* (?P<name>.+?) — ", re.MULTILINE)
_SECTION_LINE_FULL = re.compile(r"^> \*\*Missing section:\*\* .+$", re.MULTILINE)
SECTION_REASON = "the model did not write this section, even when asked again"


@dataclass(frozen=True)
class MissingInput:
    prompt_id: str
    reason: str


@dataclass(frozen=True)
class Coverage:
    missing_inputs: Sequence[MissingInput] = field(default_factory=tuple)
    missing_sections: Sequence[str] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.missing_inputs or self.missing_sections)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "no reason recorded"


def render_notes(coverage: Coverage) -> str:
    """The note block, one marked line per gap (empty when nothing is missing)."""
    lines = [f"> **Missing input:** `{m.prompt_id}` — {_one_line(m.reason)}" for m in coverage.missing_inputs]
    lines += [f"> **Missing section:** {name} — {SECTION_REASON}." for name in coverage.missing_sections]
    return "\n>\n".join(lines)


def read_notes(text: str) -> Coverage:
    return Coverage(
        missing_inputs=tuple(MissingInput(m["id"], m["reason"].strip()) for m in _INPUT_LINE.finditer(text)),
        missing_sections=tuple(m["name"].strip() for m in _SECTION_LINE.finditer(text)),
    )


def strip_notes(text: str) -> str:
    """``text`` without the note block: what the model wrote, for rules that judge the model."""
    return _SECTION_LINE_FULL.sub("", _INPUT_LINE.sub("", text))


def insert_notes(markdown: str, coverage: Coverage) -> str:
    """``markdown`` with the note block under its ``# `` title (or at the top when it has none)."""
    if not coverage:
        return markdown
    notes = render_notes(coverage)
    lines = markdown.splitlines()
    if lines and lines[0].startswith("# "):
        return "\n".join([lines[0], "", notes, "", *lines[1:]]).rstrip() + "\n"
    return f"{notes}\n\n{markdown.lstrip()}"
