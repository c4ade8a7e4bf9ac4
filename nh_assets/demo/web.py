"""The fake's corner of the web: grounding redirect links and the article pages they lead to.

Google Search grounding names each source by an opaque redirect link,
``https://vertexaisearch.cloud.google.com/grounding-api-redirect/<token>``, that answers ``302``
with the article's address in ``Location``, and is reported to answer ``404`` once it has
expired. The fake serves the same on its own loopback port: ``/grounding-api-redirect/<token>``
redirects to ``/articles/<slug>/<n>``, a small HTML page that says it is fake, until the link
expires — after ``redirect_ttl_s`` seconds, or at once when ``expire_redirects()`` is called —
and then answers 404. The article pages stay up, as real articles mostly do.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import threading
import time

REDIRECT_PREFIX = "/grounding-api-redirect/"
ARTICLE_PREFIX = "/articles/"
_ARTICLE = re.compile(r"^/articles/(?P<slug>[0-9a-f]{8})/(?P<n>[0-9]{1,2})$")


class FakeWeb:
    """Redirect tokens issued with each grounded answer, and the pages behind them."""

    def __init__(self, redirect_ttl_s: float | None = None) -> None:
        self.redirect_ttl_s = redirect_ttl_s
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (article URL, issued at)
        self._expired = False

    def redirect_for(self, base_url: str, article_path: str) -> str:
        """An opaque redirect link to ``article_path``, live for ``redirect_ttl_s`` from now.

        The token is derived from the article, so the same search answers the same way twice (the
        fake is deterministic); issuing it again extends its life."""
        issued = time.time()
        digest = hashlib.sha256(f"{base_url}{article_path}".encode()).digest()
        token = "AUZIYQ" + base64.urlsafe_b64encode(digest * 3).decode().rstrip("=")
        with self._lock:  # Location is absolute, as Google's is
            self._tokens[token] = (f"{base_url}{article_path}", issued)
        return f"{base_url}{REDIRECT_PREFIX}{token}"

    def expire_redirects(self) -> None:
        """Every redirect link issued so far, and every later one, answers 404 from now on."""
        with self._lock:
            self._expired = True

    def handles(self, path: str) -> bool:
        return path.startswith((REDIRECT_PREFIX, ARTICLE_PREFIX))

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of ``path``."""
        if path.startswith(REDIRECT_PREFIX):
            with self._lock:
                found = self._tokens.get(path[len(REDIRECT_PREFIX):])
                expired = self._expired
            ttl = self.redirect_ttl_s
            if found is None or expired or (ttl is not None and time.time() - found[1] > ttl):
                return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"<html><body>Not Found</body></html>"
            return 302, {"Location": found[0], "Content-Type": "text/html; charset=UTF-8"}, b""
        match = _ARTICLE.match(path)
        if match is None:
            return 404, {"Content-Type": "text/html; charset=UTF-8"}, b"<html><body>Not Found</body></html>"
        title = f"Demo article {match['n']} ({match['slug']})"
        body = (
            f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>A page served by the NeuroHelix fake Gemini API; "
            f"no real article was read.</p></body></html>"
        ).encode()
        return 200, {"Content-Type": "text/html; charset=UTF-8"}, body
