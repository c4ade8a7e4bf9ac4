"""``markdown``: research notes, syntheses and the daily report.

The answer is kept as the model wrote it, under a small front matter naming the prompt, the day
and the model; demo output carries a banner in the text as well. A row's ``required_sections``
(registry) are checked against the ``##`` headings of the artifact.

Models drift from the heading format routinely (``###``, ``1. Executive Summary``, a bold line,
``Key Themes and Insights`` for ``Key Themes & Insights``), so the contract recognises a required
section however it is marked and rewrites it as the canonical ``## Name`` before anything is
written: only lines that name a required section are touched. A section still missing is a gap,
not a rejection: the artifact is built with a note saying so (``coverage``), as it is when a
same-day input is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import dagster as dg

from nh_assets.artifacts import strip_front_matter, with_front_matter
from nh_assets.formats.base import DEMO_BANNER, Answer, Built, Judged, OutputFormat, Rule, Verdict, preview
from nh_assets.formats.cleanliness import clean_rule
from nh_assets.formats.coverage import Coverage, MissingInput, insert_notes, strip_notes

_HEADING = re.compile(r"^##[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
# A line that may be a heading in disguise: markdown heading marks, a number, bold or underline
# around it, a trailing colon. What is left is compared with the required names (``section_key``).
_HEADING_MARKS = re.compile(
    r"^\s{0,3}(?:#{1,6}\s+)?(?:(?:\d{1,2}|[IVX]{1,4}|[A-J])[.)]\s+)?(?:\*\*|__)?\s*(?P<name>.+?)\s*:?\s*(?:\*\*|__)?\s*:?\s*#*\s*$"
)
_NOT_A_HEADING = re.compile(r"^\s*(?:[-+>|]|\*(?!\*))")  # list items, quotes, table rows
_LEADING_NUMBER = re.compile(r"^(?:\d{1,2}|[IVX]{1,4})[.)]\s+")


def _body(text: str) -> str:
    return strip_notes(strip_front_matter(text).replace(f"> {DEMO_BANNER}", ""))


def section_key(name: str) -> str:
    """What two spellings of one heading share: case, ``&``/``and``, punctuation and spacing aside."""
    name = _LEADING_NUMBER.sub("", name.strip().strip("*_").strip())
    words = re.sub(r"[^0-9a-z]+", " ", name.casefold().replace("&", " and ")).split()
    return " ".join(words)


def normalize_sections(text: str, sections: Iterable[str]) -> tuple[str, list[str]]:
    """``text`` with each required section's heading rewritten as ``## Name``, and the names not found.

    A line counts as a section heading when, stripped of heading marks, numbering and bold, it
    names a required section and nothing else; the first such line per section wins, so a later
    sentence that happens to repeat a section name stays as it was.
    """
    wanted = {section_key(s): s for s in sections}
    found: set[str] = set()
    lines = text.splitlines()
    in_fence = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if in_fence or not line.strip() or len(line) > 120 or _NOT_A_HEADING.match(line):
            continue
        match = _HEADING_MARKS.match(line)
        key = section_key(match["name"]) if match else ""
        if key in wanted and key not in found:
            found.add(key)
            lines[index] = f"## {wanted[key]}"
    missing = [name for key, name in wanted.items() if key not in found]
    return "\n".join(lines), missing


def judge_sections(text: str, sections: Iterable[str]) -> Verdict:
    wanted = list(sections)
    present = [h.strip() for h in _HEADING.findall(strip_front_matter(text))]
    found = {h.casefold() for h in present}
    missing = [s for s in wanted if s.casefold() not in found]
    metadata: dict[str, object] = {
        "nh.sections_required": len(wanted),
        "nh.sections_found": dg.MetadataValue.json(present),
    }
    if missing:
        return Verdict(False, f"missing required ## section(s): {', '.join(missing)}", metadata)
    return Verdict(True, f"all {len(wanted)} required sections present", metadata)


class Markdown(OutputFormat):
    name = "markdown"
    extension = ".md"
    kind = "markdown"
    has_sections = True
    response_line = "markdown"
    instruction = "Answer in GitHub-flavoured markdown with `##` section headings. No preamble."

    def build(self, answer: Answer) -> Built:
        return self._build(answer)[0]

    def assess(self, answer: Answer) -> Judged:
        built, missing_sections = self._build(answer)
        gaps = tuple(
            f"the required section {name!r} is missing — write it as its own `## {name}` heading, "
            "with its content below it" for name in missing_sections
        )
        return Judged(built, gaps=gaps)

    def _build(self, answer: Answer) -> tuple[Built, list[str]]:
        body, missing_sections = normalize_sections(answer.text.strip(), answer.required_sections)
        missing_inputs = [
            MissingInput(s.prompt_id, s.missing_reason or "not materialized")
            for s in answer.sources
            if s.same_day and not s.present
        ]
        body = insert_notes(body.strip(), Coverage(tuple(missing_inputs), tuple(missing_sections)))
        fields: dict[str, object] = {"prompt_id": answer.prompt_id, "date": answer.day, "model": answer.model}
        if missing_inputs:
            fields["missing_inputs"] = ", ".join(m.prompt_id for m in missing_inputs)
        if missing_sections:
            fields["missing_sections"] = "; ".join(missing_sections)
        if answer.fallback_from:
            body = f"> Written by {answer.model} because {answer.fallback_from}'s daily quota was spent.\n\n{body}"
            fields["fallback_from"] = answer.fallback_from
        if answer.demo:
            body = f"> {DEMO_BANNER}\n\n{body}"
            fields["demo"] = "true  # fake Gemini output"
        metadata: dict[str, object] = {}
        if missing_inputs or missing_sections:
            metadata["nh.missing_inputs"] = dg.MetadataValue.json([m.__dict__ for m in missing_inputs])
            metadata["nh.missing_sections"] = dg.MetadataValue.json(missing_sections)
        return Built(with_front_matter(body, fields).encode(), metadata), missing_sections

    def preview(self, text: str) -> dg.MetadataValue:
        return dg.MetadataValue.md(preview(strip_front_matter(text)))

    def rules(self) -> Sequence[Rule]:
        return (clean_rule(_body),)


MARKDOWN = Markdown()
