"""``tags_json``: the day's tags and categories, asked of a model and kept strictly valid.

``parse_tags`` repairs what is safe to repair (fences, surrounding text, case and spacing of
categories) and refuses everything else with a ``StructuredOutputError``, which the asset treats
as a retryable bad answer. The categories are a fixed list (``vocabulary.TAG_CATEGORIES``) that
the prompt spells out to the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from nh_assets.formats.base import Answer, Built, OutputFormat, Rule, StructuredOutputError, Verdict
from nh_assets.formats.json_answer import dumps, extract_json_object, first_error
from nh_assets.formats.vocabulary import TAG_CATEGORIES

TAGS_CHECK = "tags_are_valid"
ShortTag = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=2, max_length=40)]


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


def parse_tags(text: str) -> TagsDocument:
    try:
        return TagsDocument.model_validate(extract_json_object(text))
    except ValidationError as exc:
        raise StructuredOutputError(f"tags JSON invalid at {first_error(exc)}") from None


def judge_tags(text: str) -> Verdict:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return Verdict(False, f"tags file is not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Verdict(False, f"tags file holds a JSON {type(doc).__name__}, not an object")
    try:
        tags = TagsDocument.model_validate(doc)
    except ValidationError as exc:
        return Verdict(False, f"tags JSON invalid at {first_error(exc)}")
    return Verdict(
        True,
        f"{len(tags.tags)} tags, {len(tags.categories)} categories",
        {"nh.tags": ", ".join(tags.tags), "nh.categories": ", ".join(tags.categories)},
    )


class TagsJson(OutputFormat):
    name = "tags_json"
    extension = ".json"
    kind = "json"
    response_line = "json"
    instruction = (
        'Answer with exactly one JSON object: {"tags": [5 to 8 short lowercase tags], '
        '"categories": [3 to 5 entries taken verbatim from ALLOWED CATEGORIES]}. No other text.'
    )

    def header_lines(self) -> list[str]:
        return [f"ALLOWED CATEGORIES: {', '.join(TAG_CATEGORIES)}"]

    def build(self, answer: Answer) -> Built:
        doc = parse_tags(answer.text).model_dump()
        if answer.demo:
            doc["demo"] = True
        return Built(dumps(doc))

    def rules(self) -> Sequence[Rule]:
        description = "Plain JSON: 5–8 unique tags, 3–5 categories from the fixed list."
        return (Rule(TAGS_CHECK, description, lambda text, _day: judge_tags(text)),)


TAGS_JSON = TagsJson()
