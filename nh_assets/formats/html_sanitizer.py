"""Allow-list HTML sanitizing for model-written markup that will be published, through nh3 (ammonia).

The dashboard is written by a model and served from a public site, so nothing executable may
pass: only a fixed set of structural tags and harmless attributes survive, ``script``/``style``
and similar elements are dropped with their content, event handlers are removed and links may
only use http(s), mailto or relative URLs. The markup is parsed by ammonia's HTML5 parser
(html5ever), as a browser would parse it, in linear time: a hand-written parser lost everything
after a self-closing ``<svg/>``, raised on ``a <![ b`` and took quadratic time on runs of ``</``.

``POLICY`` is the one statement of what may be published (tags, attributes, URL schemes); the
static site sanitizes with the same object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import nh3


@dataclass(frozen=True)
class HtmlPolicy:
    tags: frozenset[str]
    drop_with_content: frozenset[str]  # removed together with everything inside them
    attributes: Mapping[str, frozenset[str]]  # per tag; "*" for every allowed tag
    url_schemes: frozenset[str]  # for href
    # Relative URLs and fragments: kept ("passthrough", nh3's default) or removed ("deny").
    url_relative: str | None = None
    # No target attribute is allowed, so rel="noopener" protects nothing; without one the output's
    # attributes are exactly those of the input that were allowed.
    link_rel: str | None = None
    _cleaner: nh3.Cleaner = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cleaner = nh3.Cleaner(
            tags=set(self.tags),
            clean_content_tags=set(self.drop_with_content),
            attributes={tag: set(names) for tag, names in self.attributes.items()},
            url_schemes=set(self.url_schemes),
            url_relative=self.url_relative,
            link_rel=self.link_rel,
            strip_comments=True,
        )
        object.__setattr__(self, "_cleaner", cleaner)

    def clean(self, markup: str) -> str:
        return self._cleaner.clean(markup)


POLICY = HtmlPolicy(
    tags=frozenset(
        "a abbr b blockquote br caption code dd del details div dl dt em figcaption figure h1 h2 h3 h4 h5 "
        "h6 hr i ins kbd li mark ol p pre q s section summary article header footer main nav aside small "
        "span strong sub sup table tbody td tfoot th thead time tr u ul".split()
    ),
    drop_with_content=frozenset(
        {"script", "style", "iframe", "object", "embed", "template", "noscript", "svg", "math", "title", "textarea"}
    ),
    attributes=MappingProxyType(
        {
            "*": frozenset({"class", "id", "title", "lang"}),
            "a": frozenset({"href"}),
            "td": frozenset({"colspan", "rowspan"}),
            "th": frozenset({"colspan", "rowspan", "scope"}),
            "time": frozenset({"datetime"}),
            "ol": frozenset({"start"}),
        }
    ),
    url_schemes=frozenset({"http", "https", "mailto"}),
)

# Counting what was removed only reports (metadata ``nh.html_removed_items``); nh3 alone decides
# what is safe. Linear patterns: a start tag with its attributes, quoted values skipped whole.
_START_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTRIBUTE = re.compile(r"""[\s/]([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")


def _refused_href(value: str, policy: HtmlPolicy) -> bool:
    scheme = _SCHEME.match(value.strip("\"'"))
    if scheme is None:  # relative, a fragment or scheme-relative
        return policy.url_relative == "deny"
    return scheme.group(1).lower() not in policy.url_schemes


def _removed_items(markup: str, policy: HtmlPolicy) -> int:
    """Start tags outside the policy, and attributes (or href URLs) it refuses on allowed tags."""
    everywhere = policy.attributes.get("*", frozenset())
    removed = 0
    for name, attrs in _START_TAG.findall(markup):
        tag = name.lower()
        if tag not in policy.tags:
            removed += 1
            continue
        allowed = everywhere | policy.attributes.get(tag, frozenset())
        for attr, value in _ATTRIBUTE.findall(attrs):
            if attr.lower() not in allowed or (attr.lower() == "href" and _refused_href(value, policy)):
                removed += 1
    return removed


def sanitize_html(markup: str, policy: HtmlPolicy = POLICY) -> tuple[str, int]:
    """Return the safe markup and how many tags/attributes were removed (counted on the input)."""
    return policy.clean(markup), _removed_items(markup, policy)
