"""Output formats: the one table that says what each registry ``output_format`` means.

``FORMATS[name]`` is read by the registry (extension, model or ``builtin``), the prompt
rendering (what the model is told), the asset factory (file kind, bytes, preview) and the
checks (the rules an artifact must pass). See ``base.OutputFormat``.
"""

from collections.abc import Mapping
from types import MappingProxyType

from nh_assets.formats.base import (
    DEMO_BANNER,
    Answer,
    Built,
    Judged,
    OutputFormat,
    Rule,
    StructuredOutputError,
    Verdict,
)
from nh_assets.formats.brief import BRIEF
from nh_assets.formats.html import HTML
from nh_assets.formats.markdown import MARKDOWN
from nh_assets.formats.site_payload import SITE_PAYLOAD
from nh_assets.formats.tags_json import TAGS_JSON

FORMATS: Mapping[str, OutputFormat] = MappingProxyType(
    {fmt.name: fmt for fmt in (MARKDOWN, TAGS_JSON, HTML, SITE_PAYLOAD, BRIEF)}
)

__all__ = [
    "DEMO_BANNER",
    "FORMATS",
    "Answer",
    "Built",
    "Judged",
    "OutputFormat",
    "Rule",
    "StructuredOutputError",
    "Verdict",
]
