"""How the fake model uses ``google_web_search``, the way the real API and the CLI play it.

With the tool declared (0.61.0, ``tools.core``), one CLI call is a loop of three requests:

1. the main model answers the prompt with a ``functionCall`` of ``google_web_search``;
2. the CLI runs the tool: a request on its ``web-search`` model (``gemini-3-flash-preview``) with
   ``tools: [{googleSearch: {}}]`` and the query as the only text; the API answers with text and
   ``groundingMetadata`` (``groundingChunks`` naming the web sources, ``groundingSupports``
   placing citations);
3. the CLI sends the conversation back to the main model with a ``functionResponse`` holding the
   search text with citation markers and a ``Sources:`` list; the model writes its answer.

Everything here is fake and says so: the sources are the fake's own article pages, titled as
demo sources, named by grounding redirect links (``web``) as Google names them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEARCH_TOOL = "google_web_search"
_SOURCE_LINE = re.compile(r"^\[(?P<n>\d+)\]\s+(?P<title>.+?)\s+\((?P<uri>[^)\s]+)\)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Turn:
    """What one generation request asks of the model, as far as tools are concerned."""

    grounding: bool  # the request enables Google Search grounding (the CLI's web-search model)
    search_declared: bool  # google_web_search is offered as a function
    search_results: str | None  # the functionResponse of an earlier search, if any


def read_turn(body: dict[str, Any]) -> Turn:
    tools = body.get("tools") or []
    grounding = any(isinstance(t, dict) and "googleSearch" in t for t in tools)
    declared = any(
        d.get("name") == SEARCH_TOOL
        for t in tools
        if isinstance(t, dict)
        for d in t.get("functionDeclarations") or []
        if isinstance(d, dict)
    )
    results = None
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            response = (part or {}).get("functionResponse")
            if isinstance(response, dict) and response.get("name") == SEARCH_TOOL:
                payload = response.get("response") or {}
                results = str(payload.get("output") or payload.get("llmContent") or payload)
    return Turn(grounding, declared, results)


def search_query(prompt: str) -> str:
    """The query a model would search for: the task's first instruction line, trimmed (the CLI's
    ``<session_context>`` describes the machine, not the task)."""
    for line in prompt.rpartition("</session_context>")[2].splitlines():
        line = line.strip()
        if line and not line.isupper() and ":" not in line[:25] and not line.startswith("<"):
            return line[:120]
    return "latest AI research news"


def function_call(prompt: str) -> dict[str, Any]:
    return {"functionCall": {"name": SEARCH_TOOL, "args": {"query": search_query(prompt)}}}


@dataclass(frozen=True)
class Grounded:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def grounded_answer(query: str, link: Callable[[str], str]) -> Grounded:
    """The web-search model's answer: a short summary, three fake sources, citations placed.

    ``link`` turns an article's path into the URI the chunk names (a redirect link, ``web``)."""
    slug = hashlib.sha256(query.encode()).hexdigest()[:8]
    sentences = [
        f"Demo search results for '{query}' were produced by the NeuroHelix fake Gemini API.",
        "No web page was read; these sources are placeholder pages of the fake API.",
        "A real search would summarise the current reporting here.",
    ]
    text = " ".join(sentences)
    chunks = [
        {"web": {"uri": link(f"/articles/{slug}/{i}"), "title": f"Demo source {i} ({slug})"}}
        for i in (1, 2, 3)
    ]
    supports, offset = [], 0
    for index, sentence in enumerate(sentences):
        end = offset + len(sentence.encode())
        supports.append({"segment": {"startIndex": offset, "endIndex": end, "text": sentence}, "groundingChunkIndices": [index]})
        offset = end + 1
    return Grounded(text, {"groundingChunks": chunks, "groundingSupports": supports, "webSearchQueries": [query]})


def cited_sources(search_results: str) -> list[tuple[str, str]]:
    """(title, uri) of each ``[n] title (uri)`` line the CLI put under ``Sources:``."""
    return [(m.group("title"), m.group("uri")) for m in _SOURCE_LINE.finditer(search_results)]


def with_sources(answer: str, search_results: str | None) -> str:
    """A model that searched cites what it found, at the end of its answer."""
    sources = cited_sources(search_results or "")
    if not sources or not answer.strip():  # a model that says nothing cites nothing
        return answer
    lines = "\n".join(f"- [{title}]({uri})" for title, uri in sources)
    return f"{answer.rstrip()}\n\n## Sources\n\n{lines}\n"
