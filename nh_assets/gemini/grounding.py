"""What Google Search grounding returned during one CLI call, read at the rate gate.

The CLI's ``google_web_search`` asks its ``web-search`` model with ``googleSearch`` grounding and
hands the main model the answer with a ``Sources:`` list of ``[n] title (uri)`` built from
``candidates[0].groundingMetadata.groundingChunks[].web`` (0.61.0, ``tools/web-search.ts``). The
CLI's JSON output keeps none of it, but every answer crosses our gate, so the gate reads a copy
of each generation answer (a JSON object, a JSON array of stream chunks, or ``alt=sse`` events)
for ``groundingMetadata``: the chunks' title and uri, and the ``webSearchQueries``.

A failed search is not an error to the CLI: it sends the main model a ``functionResponse`` of
``google_web_search`` whose response is ``{"error": "Error during web search ..."}`` and the model
answers anyway. The gate sees that in the next request's body, and records it here too.

The chunk ``uri`` is Google's ``vertexaisearch.cloud.google.com/grounding-api-redirect/...`` link,
which redirects to the article and stops resolving after a while; ``sources`` resolves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nh_assets.gemini.answer_body import answer_documents

SEARCH_TOOL = "google_web_search"
# A grounding answer is a few KB; a copy beyond this is a long streamed answer, never grounded.
COPY_CAP_BYTES = 4 << 20


@dataclass(frozen=True)
class GroundingChunk:
    title: str
    uri: str


@dataclass
class Grounding:
    """Every source, query and failed search one call's answers carried, without repeats."""

    chunks: list[GroundingChunk] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    search_errors: list[str] = field(default_factory=list)

    def add(self, other: "Grounding") -> None:
        for chunk in other.chunks:
            if chunk.uri not in {c.uri for c in self.chunks}:
                self.chunks.append(chunk)
        self.queries += [q for q in other.queries if q not in self.queries]
        self.search_errors += [e for e in other.search_errors if e not in self.search_errors]

    def __add__(self, other: "Grounding") -> "Grounding":
        total = Grounding(list(self.chunks), list(self.queries), list(self.search_errors))
        total.add(other)
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "chunks": [{"title": c.title, "uri": c.uri} for c in self.chunks],
            "queries": list(self.queries),
            "search_errors": list(self.search_errors),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> "Grounding":
        doc = doc or {}
        return cls(
            [GroundingChunk(str(c.get("title") or ""), str(c.get("uri") or "")) for c in doc.get("chunks") or []],
            [str(q) for q in doc.get("queries") or []],
            [str(e) for e in doc.get("search_errors") or []],
        )


def grounding_of_answer(body: bytes) -> Grounding:
    """The grounding chunks and search queries of one generation answer, in any of its shapes."""
    found = Grounding()
    for doc in answer_documents(body):
        if isinstance(doc, dict) and isinstance(doc.get("response"), dict):  # Code Assist wraps the answer
            doc = doc["response"]
        for candidate in (doc.get("candidates") or []) if isinstance(doc, dict) else []:
            meta = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
            if not isinstance(meta, dict):
                continue
            chunks = [
                GroundingChunk(str(web.get("title") or "Untitled"), str(web["uri"]))
                for chunk in meta.get("groundingChunks") or []
                if isinstance(chunk, dict) and isinstance(web := chunk.get("web"), dict) and web.get("uri")
            ]
            queries = [str(q) for q in meta.get("webSearchQueries") or [] if q]
            found.add(Grounding(chunks, queries))
    return found


def search_errors_of_request(body: bytes) -> list[str]:
    """The tool-error strings of failed ``google_web_search`` calls the CLI sends the model."""
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return []
    if isinstance(doc, dict) and isinstance(doc.get("request"), dict):  # Code Assist wraps the request
        doc = doc["request"]
    errors: list[str] = []
    for content in (doc.get("contents") or []) if isinstance(doc, dict) else []:
        for part in (content or {}).get("parts") or [] if isinstance(content, dict) else []:
            response = part.get("functionResponse") if isinstance(part, dict) else None
            if isinstance(response, dict) and response.get("name") == SEARCH_TOOL:
                error = (response.get("response") or {}).get("error")
                if error and str(error) not in errors:
                    errors.append(str(error))
    return errors


def grounding_of_exchange(request_body: bytes, status: int, answer: bytes) -> Grounding:
    """What one generation request and its answer said about searching: the answer's grounding
    (an error answer has none) and the failed searches the request hands back to the model."""
    found = grounding_of_answer(answer) if status == 200 and len(answer) <= COPY_CAP_BYTES else Grounding()
    found.search_errors = search_errors_of_request(request_body)
    return found
