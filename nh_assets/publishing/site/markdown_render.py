"""Model-written markdown to HTML that is safe to publish, and the sources a note cites.

markdown-it-py renders CommonMark (plus tables and strikethrough) with raw HTML turned off, so
markup a model typed into its answer is shown as text, never interpreted; the result still goes
through the site's one sanitizer policy (``html_policy``), so a renderer bug cannot open a hole.
A report's first ``#`` heading is dropped: the page shows the title itself.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt

from nh_assets.artifacts import strip_front_matter

from .day_input import Source
from .html_policy import sanitize_html

_MD_LINK = re.compile(r"\[(?P<title>[^\]\n]{1,200})\]\((?P<url>https?://[^)\s]+)\)")
_BARE_URL = re.compile(r"(?<![(\[<\"'])\bhttps?://[^\s)<>\]\"']+")
_TITLE = re.compile(r"\A\s*#\s+[^\n]*\n")
_SOURCES_SECTION = re.compile(
    r"^(?P<hashes>#{1,6})\s*(?:Sources|References)\b[^\n]*\n(?P<body>.*?)(?=^#{1,6}\s|\Z)",
    re.MULTILINE | re.DOTALL | re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(["table", "strikethrough"])


def render_markdown(text: str, *, drop_title: bool = False) -> str:
    body = strip_front_matter(text)
    if drop_title:
        body = _TITLE.sub("", body, count=1)
    cleaned, _removed = sanitize_html(_renderer().render(body))
    return cleaned


def without_sources_section(text: str) -> str:
    """The note without its "Sources" section: the page lists the extracted sources itself."""
    return _SOURCES_SECTION.sub("", text)


def plain_text(text: str, limit: int = 400) -> str:
    """Markdown reduced to one line of text (feed summaries, meta descriptions)."""
    flat = re.sub(r"[#>*_`|\[\]]+", " ", strip_front_matter(text))
    flat = re.sub(r"\((https?://[^)]+)\)", "", flat)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def extract_sources(text: str, limit: int = 40) -> list[Source]:
    """Every distinct http(s) link of a note, titled by its link text when it has one."""
    seen: dict[str, str] = {}
    for match in _MD_LINK.finditer(text):
        seen.setdefault(match.group("url").rstrip(".,;"), match.group("title").strip())
    for match in _BARE_URL.finditer(text):
        url = match.group(0).rstrip(".,;")
        seen.setdefault(url, url)
    return [Source(title=title, url=url) for url, title in list(seen.items())[:limit]]
