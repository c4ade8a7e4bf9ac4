"""Which links a day page may carry: the final URLs the day's searches returned, and no other.

Each research note records in its front matter the final URLs its searches' redirect links led
to (``prompts.sources``). A day page links only those: a grounding redirect is never linked (it
dies within days), and any other link — one a model wrote that no search returned, in a note,
the report or the dashboard — loses its link and is marked *unverified*. A day collected before
notes recorded their sources has nothing to check against: its links stay as they were, less
any grounding redirect.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from nh_assets.gemini.source_links import is_grounding_redirect
from nh_assets.prompts.sources import NoteSources, normalized, rewrite_links

_HREF = re.compile(r'\shref="(?P<url>[^"]*)"')


@dataclass
class DaySources:
    """What the day's notes recorded, and what the page's texts cited beyond it."""

    notes: list[NoteSources] = field(default_factory=list)
    unverified: set[str] = field(default_factory=set)

    @property
    def verified(self) -> set[str] | None:
        """Normalized final URLs of the day; None for a day whose notes recorded none."""
        if not self.notes:
            return None
        return {normalized(s.url) for n in self.notes for s in n.grounded}

    def markdown(self, text: str) -> str:
        """``text`` with only verified links kept, the rest unlinked and marked."""
        # Links are judged against the final URLs; a redirect has no final URL here, so it is unlinked.
        cleaned, unverified = rewrite_links(text, {}, self.verified, link_unverified=False)
        self.unverified.update(unverified)
        return cleaned

    def markup(self, markup: str) -> str:
        """Sanitized HTML with the ``href`` of every link outside the policy removed."""
        verified = self.verified

        def keep(match: re.Match) -> str:
            url = html.unescape(match["url"])
            if is_grounding_redirect(url):
                return ""
            if verified is not None and url.startswith(("http://", "https://")) and normalized(url) not in verified:
                self.unverified.add(url)
                return ""
            return match.group(0)

        return _HREF.sub(keep, markup)

    def counts(self) -> tuple[int | None, int | None, int | None]:
        """(grounded, unverified, dead) for the day's KPIs; None each for a day without records."""
        if not self.notes:
            return None, None, None
        grounded = len(self.verified or ())
        unverified = {normalized(u) for u in self.unverified} | {normalized(u) for n in self.notes for u in n.unverified}
        return grounded, len(unverified), sum(len(n.dead) for n in self.notes)


def day_sources(recorded: Iterable[NoteSources | None]) -> DaySources:
    return DaySources([n for n in recorded if n is not None])
