"""The two JSON artifacts the site consumes, and how they are kept valid.

Models wrap JSON in fences, add prose around it, or drift from the schema. ``parse_tags``
repairs what is safe to repair (fences, surrounding text, case and spacing of categories) and
refuses everything else with a ``StructuredOutputError``, which the asset treats as a retryable
bad answer. The site payload is not asked of a model at all: it is built deterministically from
the day's report and tags, so the same inputs always publish the same bytes.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from nh_assets.report_schema import REPORT_SECTIONS, TAG_CATEGORIES

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
ShortTag = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=40)]


class StructuredOutputError(ValueError):
    """The model's answer cannot be turned into a valid artifact; a retry may fix it."""


class TagsDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tags: list[ShortTag] = Field(min_length=5, max_length=8)
    categories: list[str] = Field(min_length=3, max_length=5)

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        if len(set(tags)) != len(tags):
            raise ValueError("tags must be unique")
        return tags

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, categories: list[str]) -> list[str]:
        canonical = {c.casefold(): c for c in TAG_CATEGORIES}
        out = []
        for category in categories:
            match = canonical.get(category.strip().casefold())
            if match is None:
                raise ValueError(f"category {category!r} is not one of: {', '.join(TAG_CATEGORIES)}")
            if match not in out:
                out.append(match)
        if len(out) < 3:
            raise ValueError("at least 3 distinct categories are required")
        return out


def extract_json_object(text: str) -> dict:
    """The first JSON object in ``text``, looking inside code fences first."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start == -1 or end <= start:
            continue
        try:
            doc = json.loads(candidate[start : end + 1])
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    raise StructuredOutputError("the answer holds no parseable JSON object")


def parse_tags(text: str) -> TagsDocument:
    try:
        return TagsDocument.model_validate(extract_json_object(text))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise StructuredOutputError(f"tags JSON invalid at {where}: {first['msg']}") from None


class PayloadSection(BaseModel):
    heading: str
    markdown: str


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
    )
