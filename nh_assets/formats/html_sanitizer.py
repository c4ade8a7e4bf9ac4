"""Allow-list HTML sanitizing for model-written markup that will be published.

The dashboard is written by a model and served from a public site, so nothing executable may
pass: only a fixed set of structural tags and harmless attributes survive, ``script``/``style``
and similar elements are dropped with their content, event handlers are removed and links may
only use http(s), mailto or fragment URLs. Parsing with the standard library's tolerant parser
(rather than regular expressions) means malformed markup cannot smuggle a tag through.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code dd div dl dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i "
    "li ol p pre section article header footer main nav aside small span strong sub sup table "
    "tbody td tfoot th thead tr u ul".split()
)
VOID_TAGS = frozenset({"br", "hr"})
DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math"})
ALLOWED_ATTRS = frozenset({"class", "id", "title", "href", "colspan", "rowspan", "scope", "lang"})
SAFE_URL_PREFIXES = ("http://", "https://", "mailto:", "#", "/")


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0
        self.removed = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_WITH_CONTENT:
            self.dropping += 1
            self.removed += 1
            return
        if self.dropping:
            return
        if tag not in ALLOWED_TAGS:
            self.removed += 1
            return
        kept = []
        for name, value in attrs:
            value = value or ""
            if name not in ALLOWED_ATTRS:
                self.removed += 1
                continue
            if name == "href" and not value.strip().lower().startswith(SAFE_URL_PREFIXES):
                self.removed += 1
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.open and self.open[-1] == tag and not self.dropping:
            self.open.pop()
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_WITH_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        while self.open:
            current = self.open.pop()
            self.out.append(f"</{current}>")
            if current == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def close(self) -> None:
        super().close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")


def sanitize_html(markup: str) -> tuple[str, int]:
    """Return the safe markup and how many tags/attributes were removed."""
    parser = _Sanitizer()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out), parser.removed
