"""A link checker for a built site: every href and src must name a file of the build; and what a
cited link answers now.

Root-relative and relative references are resolved against the build (``/x/`` means
``x/index.html``; query strings and fragments are ignored). Absolute ``http(s)`` references are
allowed only as ``<a href>`` (the sources a note cites, and the feed's own links): anything the
browser would *load* (script, stylesheet, icon, image, frame) must come from the build itself.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LOADED = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src", "audio": "src"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.refs.append((tag, name, value))


def _target(root: Path, page: Path, ref: str) -> Path:
    path = unquote(urlsplit(ref).path)
    base = root if path.startswith("/") else page.parent
    target = (base / path.lstrip("/")).resolve()
    return target / "index.html" if ref.split("?")[0].split("#")[0].endswith("/") or target.is_dir() else target


def broken_links(root: Path) -> list[str]:
    problems: list[str] = []
    root = root.resolve()
    for page in sorted(root.rglob("*.html")):
        parser = _Refs()
        parser.feed(page.read_text(encoding="utf-8"))
        where = page.relative_to(root)
        for tag, attr, ref in parser.refs:
            scheme = urlsplit(ref).scheme
            if scheme in ("http", "https", "mailto"):
                if not (tag == "a" and attr == "href"):
                    problems.append(f"{where}: <{tag} {attr}> loads from another host: {ref}")
                continue
            if scheme or ref.startswith("//"):
                problems.append(f"{where}: <{tag} {attr}> has a {scheme or 'protocol-relative'} URL: {ref}")
                continue
            if ref.startswith("#") or ref == "":
                continue
            target = _target(root, page, ref)
            if not target.is_file() or not target.is_relative_to(root):
                problems.append(f"{where}: <{tag} {attr}={ref!r}> resolves to nothing in the build")
    return problems


def refs_in(page: Path) -> list[tuple[str, str, str]]:
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


class _NoFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def status_now(url: str) -> int:
    """The HTTP status ``url`` answers now, redirects not followed (a live grounding redirect is a
    302, an expired one a 404); 0 when it cannot be reached at all."""
    try:
        with urllib.request.build_opener(_NoFollow()).open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as answer:
        answer.close()
        return answer.code
    except OSError:
        return 0
