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
what may be published, and one count of what went (the pipeline's linear count on the input, which
accepts any markup).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from nh_assets.formats.html_sanitizer import POLICY, sanitize_html as sanitize_with

# The pipeline's one policy (``formats.html_sanitizer.POLICY``) with the site's stricter rules:
# relative links denied, outbound links given a rel that passes neither the reader's session nor
# the referrer on, and no ``id``: a model's id could shadow the page's own anchors (the skip
# link's target, say).
LINK_REL = "noopener noreferrer nofollow"
SITE_POLICY = dataclasses.replace(
    POLICY,
    tags=POLICY.tags - {"main", "nav"},
    attributes=MappingProxyType({tag: names - {"id"} for tag, names in POLICY.attributes.items()}),
    url_relative="deny",
    link_rel=LINK_REL,
)


def sanitize_html(markup: str) -> tuple[str, int]:
    """The markup with everything outside the site's policy removed, and how many items went."""
    return sanitize_with(markup, SITE_POLICY)
