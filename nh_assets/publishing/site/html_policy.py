"""The one allow-list policy for model-written HTML that the site publishes (nh3, i.e. ammonia).

Everything a model wrote reaches a public page through ``sanitize_html``: the report and notes
after markdown rendering, and the dashboard's markup. The policy keeps structure and text and
nothing that can run or fetch: no ``script``/``style`` (dropped with their content), no event
handlers or ``style`` attributes, no images, frames, forms or SVG, and links only to absolute
``http``/``https``/``mailto`` URLs. Relative URLs are removed, because a model cannot know the
site's layout and a dangling link would break the build's link check. nh3 parses HTML the way a
browser does (html5ever), so malformed markup cannot smuggle a tag past it.

It is the pipeline's own policy (``nh_assets.formats.html_sanitizer.POLICY``, which sanitizes the
dashboard before it is written) with the site's link rules on top, so there is one statement of
what may be published. nh3 does not report what it removed, so the count is the difference in
elements and attributes before and after.
"""

from __future__ import annotations

from html.parser import HTMLParser

import nh3

from nh_assets.formats.html_sanitizer import POLICY

# The pipeline's one policy (tags, attributes, URL schemes: ``formats.html_sanitizer.POLICY``),
# with the site's stricter link rules and without ``id``: a model's id could shadow the page's
# own anchors (the skip link's target, say).
ALLOWED_TAGS = POLICY.tags - {"main", "nav"}
ALLOWED_ATTRIBUTES = {tag: set(names) - {"id"} for tag, names in POLICY.attributes.items()}
URL_SCHEMES = POLICY.url_schemes
DROPPED_WITH_CONTENT = POLICY.drop_with_content
# Outbound links from model text must not pass the reader's session or the referrer on.
LINK_REL = "noopener noreferrer nofollow"

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


class _Counter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # nh3 adds rel= to links; it is not an item the input had.
        self.items += 1 + sum(1 for name, _ in attrs if not (tag == "a" and name == "rel"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _count(markup: str) -> int:
    counter = _Counter()
    counter.feed(markup)
    counter.close()
    return counter.items


def sanitize_html(markup: str) -> tuple[str, int]:
    """The markup with everything outside the policy removed, and how many items went."""
    cleaned = _CLEANER.clean(markup)
    return cleaned, max(0, _count(markup) - _count(cleaned))
