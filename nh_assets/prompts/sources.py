"""The sources of a research note: what its searches returned, where those links lead, what it cites.

A row that declares ``google_web_search`` in the registry is a research row. Its call's grounding
(``gemini.grounding``, read at the rate gate) names each source by a redirect link that dies
after a while, so in the step that wrote the note each link is resolved to its final URL
(``gemini.source_links``), and the note keeps those:

- the front matter gets ``sources`` (title, final URL, domain, when resolved), ``dead_sources``
  (title and why, for links that did not resolve), ``unverified_urls`` (links the answer cites
  that no search returned), ``search_queries`` and ``search_errors`` (searches the CLI reported as
  failed to the model, which then answered without them), each a one-line JSON value;
- in the body, a cited redirect becomes its final URL, a dead one loses its link, and a link no
  search returned is marked *unverified*;
- the same figures go into the materialization's metadata.

``is_grounded`` (WARN) then judges the written note: it fails when a search failed or when the
note has no grounded source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

from nh_assets.artifacts import add_front_matter, read_front_matter
from nh_assets.formats.base import Built, Verdict
from nh_assets.gemini.grounding import SEARCH_TOOL, Grounding
from nh_assets.gemini.source_links import Bounds, Resolved, is_grounding_redirect, resolve_all

GROUNDED_CHECK = "is_grounded"
UNVERIFIED = "*(unverified: no search returned this link)*"
DEAD = "*(source link dead)*"
MD_LINK = re.compile(r"\[(?P<text>[^\]\n]{0,300})\]\((?P<url>https?://[^)\s]+)\)")
BARE_URL = re.compile(r"(?<![(\[<\"'=])\bhttps?://[^\s<>()\[\]\"']+")
_TRAILING = ".,;:!?"
# A link with the marker an earlier pass gave it: judged again, marked once.
_MARKED = r"(?P<mark> \*\((?:unverified|source link dead)[^)\n]*\)\*)?"
_MD_LINK_MARKED = re.compile(MD_LINK.pattern + _MARKED)
_BARE_URL_MARKED = re.compile(BARE_URL.pattern + _MARKED)


def searches(tools: tuple[str, ...]) -> bool:
    """Whether a registry row with these tools is a research row (it may search the web)."""
    return SEARCH_TOOL in tools


def normalized(url: str) -> str:
    """What two spellings of one link share: scheme and host case, fragment, trailing slash."""
    parts = urlsplit(url.strip().rstrip(_TRAILING))
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


@dataclass(frozen=True)
class NoteSource:
    title: str
    url: str
    domain: str
    resolved_at: str


@dataclass
class NoteSources:
    grounded: list[NoteSource] = field(default_factory=list)
    dead: list[dict[str, str]] = field(default_factory=list)  # title, error, resolved_at
    unverified: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    search_errors: list[str] = field(default_factory=list)
    final_of: dict[str, str | None] = field(default_factory=dict)  # redirect → final URL (None: dead)

    def front_matter(self) -> dict[str, str]:
        dump = lambda value: json.dumps(value, ensure_ascii=False)  # noqa: E731
        return {
            "sources": dump([s.__dict__ for s in self.grounded]),
            "dead_sources": dump(self.dead),
            "unverified_urls": dump(self.unverified),
            "search_queries": dump(self.queries),
            "search_errors": dump(self.search_errors),
        }

    def metadata(self) -> dict[str, object]:
        return {
            "nh.sources": dg.MetadataValue.json([s.__dict__ for s in self.grounded]),
            "nh.sources_grounded": dg.MetadataValue.int(len(self.grounded)),
            "nh.sources_dead": dg.MetadataValue.int(len(self.dead)),
            "nh.sources_unverified": dg.MetadataValue.int(len(self.unverified)),
            "nh.unverified_urls": dg.MetadataValue.json(self.unverified),
            "nh.search_queries": dg.MetadataValue.json(self.queries),
            "nh.search_errors": dg.MetadataValue.json(self.search_errors),
        }


def cited_urls(text: str) -> list[str]:
    """Every distinct http(s) link of a markdown text, in order."""
    urls = [m["url"] for m in MD_LINK.finditer(text)] + [m.group(0) for m in BARE_URL.finditer(text)]
    return list(dict.fromkeys(u.rstrip(_TRAILING) for u in urls))


def gather(grounding: Grounding, answer: str, *, env: Mapping[str, str], bounds: Bounds = Bounds()) -> NoteSources:
    """Resolve what the searches returned and match the answer's links against it."""
    resolved: dict[str, Resolved] = resolve_all([c.uri for c in grounding.chunks], env=env, bounds=bounds)
    found = NoteSources(queries=list(grounding.queries), search_errors=list(grounding.search_errors))
    finals: set[str] = set()
    for chunk in grounding.chunks:
        link = resolved[chunk.uri]
        found.final_of[chunk.uri] = link.final_url
        if link.final_url is None:
            found.dead.append({"title": chunk.title, "error": link.error or "dead", "resolved_at": link.resolved_at})
        elif normalized(link.final_url) not in finals:
            finals.add(normalized(link.final_url))
            domain = (urlsplit(link.final_url).hostname or "").removeprefix("www.")
            found.grounded.append(NoteSource(chunk.title, link.final_url, domain, link.resolved_at))
    returned = {normalized(u) for u in found.final_of} | finals
    found.unverified = [u for u in cited_urls(answer) if normalized(u) not in returned]
    return found


def rewrite_links(
    text: str, final_of: Mapping[str, str | None], verified: set[str] | None, *, link_unverified: bool = True
) -> tuple[str, list[str]]:
    """``text`` with each redirect replaced by its final URL (unlinked when dead or unknown) and,
    when ``verified`` (normalized URLs) is given, every other link outside it marked unverified
    (and unlinked unless ``link_unverified``). Returns the text and the unverified links."""
    unverified: list[str] = []

    def judge(url: str) -> tuple[str | None, str]:
        """(the URL to link, a marker to add)."""
        if url in final_of or is_grounding_redirect(url):
            final = final_of.get(url)
            return (final, "") if final else (None, DEAD)
        if verified is not None and normalized(url) not in verified:
            if url not in unverified:
                unverified.append(url)
            return (url if link_unverified else None), UNVERIFIED
        return url, ""

    def link(match: re.Match) -> str:
        url, marker = judge(match["url"].rstrip(_TRAILING))
        tail = match["url"][len(match["url"].rstrip(_TRAILING)):]
        shown = f"[{match['text']}]({url}{tail})" if url else match["text"]
        return f"{shown} {marker}" if marker else shown + (match["mark"] or "")

    def bare(match: re.Match) -> str:
        raw = match.group(0)[: match.end() - match.start() - len(match["mark"] or "")]
        url, marker = judge(raw.rstrip(_TRAILING))
        tail = raw[len(raw.rstrip(_TRAILING)):]
        return f"{url or ''}{tail} {marker}".strip() if marker else f"{url}{tail}{match['mark'] or ''}"

    return _BARE_URL_MARKED.sub(bare, _MD_LINK_MARKED.sub(link, text)), unverified


def attach(built: Built, found: NoteSources) -> Built:
    """The note with its sources in the front matter and its links resolved or marked."""
    verified = {normalized(s.url) for s in found.grounded} | {normalized(u) for u in found.final_of}
    text, _ = rewrite_links(built.content.decode("utf-8"), found.final_of, verified)
    text = add_front_matter(text, found.front_matter())
    return Built(text.encode(), {**built.metadata, **found.metadata()})


def read_sources(text: str) -> NoteSources | None:
    """A written note's sources, from its front matter; None for a note written without them."""
    fields = read_front_matter(text)
    if "sources" not in fields:
        return None

    def load(name: str) -> list:
        try:
            value = json.loads(fields.get(name) or "[]")
        except ValueError:
            return []
        return value if isinstance(value, list) else []

    grounded = [
        NoteSource(str(s.get("title") or ""), str(s["url"]), str(s.get("domain") or ""), str(s.get("resolved_at") or ""))
        for s in load("sources")
        if isinstance(s, dict) and s.get("url")
    ]
    return NoteSources(
        grounded=grounded,
        dead=[d for d in load("dead_sources") if isinstance(d, dict)],
        unverified=[str(u) for u in load("unverified_urls")],
        queries=[str(q) for q in load("search_queries")],
        search_errors=[str(e) for e in load("search_errors")],
    )


def judge_grounded(text: str, _day: str) -> Verdict:
    """``is_grounded``: every search succeeded and at least one source resolved."""
    found = read_sources(text)
    if found is None:
        return Verdict(False, "the note records no search: it was written without its sources")
    metadata: dict[str, object] = {
        "nh.sources_grounded": len(found.grounded),
        "nh.sources_dead": len(found.dead),
        "nh.sources_unverified": len(found.unverified),
    }
    if found.search_errors:
        return Verdict(
            False, f"{len(found.search_errors)} search(es) failed and the model answered without them: "
            f"{found.search_errors[0][:200]}", metadata,
        )
    if not found.grounded:
        dead = f" ({len(found.dead)} returned, all dead)" if found.dead else ""
        return Verdict(False, f"no grounded source{dead}: the note's claims are unsourced", metadata)
    return Verdict(True, f"{len(found.grounded)} grounded source(s), {len(found.unverified)} unverified link(s)", metadata)
