"""``markdown``: research notes, syntheses and the daily report.

The answer is kept as the model wrote it, under a small front matter naming the prompt, the day
and the model; demo output carries a banner in the text as well. A row's ``required_sections``
(registry) are checked against the ``##`` headings of the artifact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import dagster as dg

from nh_assets.artifacts import strip_front_matter, with_front_matter
from nh_assets.formats.base import DEMO_BANNER, Answer, Built, OutputFormat, Rule, Verdict, preview
from nh_assets.formats.cleanliness import clean_rule

_HEADING = re.compile(r"^##[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _body(text: str) -> str:
    return strip_front_matter(text).replace(f"> {DEMO_BANNER}", "")


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
        body = answer.text.strip()
        fields: dict[str, object] = {"prompt_id": answer.prompt_id, "date": answer.day, "model": answer.model}
        if answer.demo:
            body = f"> {DEMO_BANNER}\n\n{body}"
            fields["demo"] = "true  # fake Gemini output"
        return Built(with_front_matter(body, fields).encode())

    def preview(self, text: str) -> dg.MetadataValue:
        return dg.MetadataValue.md(preview(strip_front_matter(text)))

    def rules(self) -> Sequence[Rule]:
        return (clean_rule(_body),)


MARKDOWN = Markdown()
