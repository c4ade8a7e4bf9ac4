"""``site_payload``: the JSON document the site renders for one day, built without a model.

It is assembled deterministically from the same-day report (markdown) and tags (JSON) among the
row's sources, so the same inputs always publish the same bytes; the registry declares such a
row with model ``builtin``. What the report says it lacks (``coverage`` notes: inputs that failed,
sections the model left out) is carried into ``missing_inputs`` and ``missing_sections``, which
default to empty so payloads written before those fields still validate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nh_assets.formats.base import DEMO_BANNER, Answer, Built, OutputFormat, Rule, StructuredOutputError, Verdict
from nh_assets.formats.base import sources_with
from nh_assets.formats.coverage import read_notes
from nh_assets.formats.json_answer import dumps, first_error
from nh_assets.formats.tags_json import TagsDocument, parse_tags
from nh_assets.formats.vocabulary import REPORT_SECTIONS

PAYLOAD_CHECK = "payload_matches_schema"


class PayloadSection(BaseModel):
    heading: str
    markdown: str


class PayloadMissingInput(BaseModel):
    prompt_id: str
    reason: str


class SitePayload(BaseModel):
    """The JSON document the static site renders for one day (schema version 1)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    title: str = Field(min_length=1)
    summary: str
    tags: list[str]
    categories: list[str]
    sections: list[PayloadSection]
    notable_developments: list[str]
    strategic_implications: list[str]
    recommendations: list[str]
    raw_markdown: str
    permalink: str
    demo: bool = False
    missing_inputs: list[PayloadMissingInput] = Field(default_factory=list)
    missing_sections: list[str] = Field(default_factory=list)


def split_sections(markdown: str) -> list[PayloadSection]:
    """``##`` sections of a markdown report, in order, with their bodies."""
    sections: list[PayloadSection] = []
    heading, body = None, []
    for line in markdown.splitlines():
        if line.startswith("## "):
            if heading is not None:
                sections.append(PayloadSection(heading=heading, markdown="\n".join(body).strip()))
            heading, body = line[3:].strip(), []
        elif heading is not None:
            body.append(line)
    if heading is not None:
        sections.append(PayloadSection(heading=heading, markdown="\n".join(body).strip()))
    return sections


def _items(markdown: str) -> list[str]:
    items = [m.group(1).strip() for m in re.finditer(r"^\s*(?:[-*+]|\d+[.)])\s+(.+)$", markdown, re.MULTILINE)]
    if items:
        return items
    return [p.strip() for p in markdown.split("\n\n") if p.strip()]


def _section(sections: list[PayloadSection], name: str) -> str:
    for section in sections:
        if section.heading.casefold() == name.casefold():
            return section.markdown
    return ""


def build_site_payload(*, date: str, report_markdown: str, tags: TagsDocument, demo: bool) -> SitePayload:
    sections = split_sections(report_markdown)
    title_match = re.search(r"^#\s+(.+)$", report_markdown, re.MULTILINE)
    summary_md = _section(sections, REPORT_SECTIONS[0])
    summary = next((p.strip() for p in summary_md.split("\n\n") if p.strip()), "")
    coverage = read_notes(report_markdown)
    return SitePayload(
        date=date,
        title=title_match.group(1).strip() if title_match else f"NeuroHelix Daily Report — {date}",
        summary=summary,
        tags=list(tags.tags),
        categories=list(tags.categories),
        sections=sections,
        notable_developments=_items(_section(sections, "Notable Developments")),
        strategic_implications=_items(_section(sections, "Strategic Implications")),
        recommendations=_items(_section(sections, "Actionable Recommendations")),
        raw_markdown=report_markdown,
        permalink=f"/reports/{date}/",
        demo=demo,
        missing_inputs=[PayloadMissingInput(prompt_id=m.prompt_id, reason=m.reason) for m in coverage.missing_inputs],
        missing_sections=list(coverage.missing_sections),
    )


def judge_payload(text: str, day: str) -> Verdict:
    try:
        payload = SitePayload.model_validate_json(text)
    except ValidationError as exc:
        return Verdict(False, f"site payload does not match the schema at {first_error(exc)}")
    if payload.date != day:
        return Verdict(False, f"site payload is dated {payload.date}, not {day}")
    gaps = ""
    if payload.missing_inputs or payload.missing_sections:
        gaps = f"; published without {len(payload.missing_inputs)} input(s) and {len(payload.missing_sections)} section(s)"
    return Verdict(
        True,
        f"schema v{payload.schema_version}, {len(payload.sections)} sections{gaps}",
        {
            "nh.sections": len(payload.sections),
            "nh.demo": payload.demo,
            "nh.missing_inputs": ", ".join(m.prompt_id for m in payload.missing_inputs) or "none",
        },
    )


class SitePayloadFormat(OutputFormat):
    name = "site_payload"
    extension = ".json"
    kind = "json"
    uses_model = False
    published = True

    def build(self, answer: Answer) -> Built:
        report = next(iter(sources_with(answer.sources, ".md", same_day=True)), None)
        tags = next(iter(sources_with(answer.sources, ".json", same_day=True)), None)
        if report is None or tags is None:
            raise StructuredOutputError("the site payload needs the day's report (.md) and tags (.json) as inputs")
        tags_doc = parse_tags(tags.text or "")
        demo = DEMO_BANNER in (report.text or "") or '"demo": true' in (tags.text or "")
        payload = build_site_payload(date=answer.day, report_markdown=report.text or "", tags=tags_doc, demo=demo)
        metadata: dict[str, object] = {"gemini.demo": demo}
        if payload.missing_inputs:
            metadata["nh.missing_inputs"] = ", ".join(m.prompt_id for m in payload.missing_inputs)
        return Built(dumps(payload.model_dump()), metadata)

    def rules(self) -> Sequence[Rule]:
        return (Rule(PAYLOAD_CHECK, "Matches the SitePayload schema, dated with its partition.", judge_payload),)


SITE_PAYLOAD = SitePayloadFormat()
