"""Grounding redirect links resolved to the pages they lead to, within fixed bounds.

Search grounding names each source by a ``vertexaisearch.cloud.google.com/grounding-api-redirect/…``
link that answers 302 to the article, and is reported to answer 404 after a while. A note that
keeps the redirect keeps a link that will die, so each link is followed once, in the step that
wrote the note, and the final URL is what the note and the site keep.

The step must not hang on the open web: every link has its own time bound and the whole batch
one more; at most a few links are followed at once; redirects are followed hop by hop up to a
limit (each hop decides its own proxy, as the CLI would, from ``HTTPS_PROXY``/``HTTP_PROXY``/
``NO_PROXY`` of the child environment), and of the final page at most ``max_bytes`` are read,
for its ``<title>``. A link that answers 4xx/5xx, times out or cannot be reached is *dead*, with
the reason recorded; it is never retried within the step.
"""

from __future__ import annotations

import html
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

REDIRECT_PATH = "/grounding-api-redirect/"
_TITLE = re.compile(rb"<title[^>]*>(?P<t>[^<]{1,300})</title>", re.IGNORECASE)
_USER_AGENT = "NeuroHelix-source-check/1 (+follows grounding redirects once)"


def is_grounding_redirect(url: str) -> bool:
    return REDIRECT_PATH in urlsplit(url).path


@dataclass(frozen=True)
class Bounds:
    per_link_s: float = 10.0
    total_s: float = 40.0
    max_bytes: int = 64 * 1024
    max_redirects: int = 5
    workers: int = 4


@dataclass(frozen=True)
class Resolved:
    """Where one link led: its final URL, or why it is dead."""

    uri: str
    final_url: str | None
    status: int | None
    error: str | None
    resolved_at: str
    page_title: str = ""
    bytes_read: int = 0

    @property
    def dead(self) -> bool:
        return self.final_url is None


def proxies_from(env: Mapping[str, str]) -> dict[str, str]:
    """The proxy settings of ``env`` (lower-case names first, as curl and urllib read them)."""
    proxies = {}
    for scheme in ("http", "https", "no"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            proxies[scheme] = value
    return proxies


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # each hop is followed by ``_follow``
        return None


def _opener(url: str, proxies: Mapping[str, str]) -> urllib.request.OpenerDirector:
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass_environment(parts.hostname or "", dict(proxies)):
        return urllib.request.build_opener(_NoRedirect(), urllib.request.ProxyHandler({parts.scheme: proxy}))
    return urllib.request.build_opener(_NoRedirect(), urllib.request.ProxyHandler({}))


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _read_capped(response, max_bytes: int, deadline: float) -> bytes:
    data = b""
    while len(data) < max_bytes and time.monotonic() < deadline:
        chunk = response.read(min(16384, max_bytes - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def resolve_one(uri: str, *, deadline: float, bounds: Bounds, proxies: Mapping[str, str]) -> Resolved:
    """Follow ``uri`` hop by hop until a page answers, within ``deadline`` (monotonic)."""
    deadline = min(deadline, time.monotonic() + bounds.per_link_s)
    url = uri
    for _hop in range(bounds.max_redirects + 1):
        if urlsplit(url).scheme not in ("http", "https"):
            return Resolved(uri, None, None, f"not an http(s) link: {url[:80]}", _now())
        left = deadline - time.monotonic()
        if left <= 0:
            return Resolved(uri, None, None, "timeout", _now())
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept": "text/html,*/*"})
        try:
            response = _opener(url, proxies).open(request, timeout=left)
        except urllib.error.HTTPError as answer:
            with answer:
                location = answer.headers.get("Location")
                if answer.code in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                return Resolved(uri, None, answer.code, f"HTTP {answer.code}", _now())
        except (TimeoutError, socket.timeout):
            return Resolved(uri, None, None, "timeout", _now())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else f"unreachable: {reason}"
            return Resolved(uri, None, None, kind, _now())
        with response:
            try:
                body = _read_capped(response, bounds.max_bytes, deadline)
            except (TimeoutError, socket.timeout, OSError):
                body = b""  # the page answered; its title is all that is lost
            title = _TITLE.search(body)
            return Resolved(
                uri, response.geturl() or url, response.status, None, _now(),
                page_title=" ".join(html.unescape(title["t"].decode("utf-8", "replace")).split()) if title else "",
                bytes_read=len(body),
            )
    return Resolved(uri, None, None, f"more than {bounds.max_redirects} redirects", _now())


def resolve_all(uris: Iterable[str], *, env: Mapping[str, str], bounds: Bounds = Bounds()) -> dict[str, Resolved]:
    """Each distinct link of ``uris`` resolved, a few at once, all within ``bounds.total_s``."""
    unique = list(dict.fromkeys(u for u in uris if u))
    if not unique:
        return {}
    proxies = proxies_from(env)
    deadline = time.monotonic() + bounds.total_s
    pool = ThreadPoolExecutor(max_workers=max(1, bounds.workers), thread_name_prefix="source-link")
    try:
        futures = {u: pool.submit(resolve_one, u, deadline=deadline, bounds=bounds, proxies=proxies) for u in unique}
        # Every hop's timeout ends by the deadline; the margin covers a thread between two hops.
        wait(futures.values(), timeout=bounds.total_s + 1.0)
        return {
            u: f.result() if f.done() else Resolved(u, None, None, "timeout (the batch's time bound)", _now())
            for u, f in futures.items()
        }
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
