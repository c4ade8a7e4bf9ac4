"""Finding the JSON object in a model's answer: inside code fences, or among prose.

Models wrap JSON in fences and add sentences around it however they are asked; taking the
first parseable object is safe, because the schema that follows refuses anything else.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from nh_assets.formats.base import StructuredOutputError

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


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


def first_error(exc: ValidationError) -> str:
    """``where: what`` of a pydantic error's first problem, for one-line messages."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return f"{where}: {first['msg']}"


def dumps(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
