"""The gate's reading of grounding: every answer shape the CLI receives, and failed searches."""

from __future__ import annotations

import json

import pytest

from nh_assets.gemini.grounding import Grounding, GroundingChunk, grounding_of_answer, search_errors_of_request, grounding_of_exchange

pytestmark = pytest.mark.fast

META = {
    "webSearchQueries": ["open model releases this week"],
    "groundingChunks": [
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ1", "title": "reuters.com"}},
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ2", "title": "theverge.com"}},
        {"retrievedContext": {"uri": "gs://not-web", "title": "x"}},
    ],
    "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 5}, "groundingChunkIndices": [0]}],
}
WANT = [
    GroundingChunk("reuters.com", "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ1"),
    GroundingChunk("theverge.com", "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ2"),
]


def _answer(meta: dict | None) -> dict:
    candidate = {"content": {"role": "model", "parts": [{"text": "x"}]}, "index": 0}
    if meta:
        candidate["groundingMetadata"] = meta
    return {"candidates": [candidate]}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(_answer(META)).encode(),  # generateContent, as the CLI's web-search call gets it
        json.dumps([_answer(None), _answer(META)]).encode(),  # a stream without alt=sse
        b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in (_answer(None), _answer(META))),
        json.dumps({"response": _answer(META), "traceId": "t"}).encode(),  # Code Assist
    ],
    ids=["json", "json-array", "sse", "code-assist"],
)
def test_chunks_and_queries_read_from_every_answer_shape(body: bytes) -> None:
    found = grounding_of_answer(body)
    assert found.chunks == WANT
    assert found.queries == ["open model releases this week"]


def test_an_answer_without_grounding_or_not_json_gives_nothing() -> None:
    assert grounding_of_answer(json.dumps(_answer(None)).encode()).chunks == []
    assert grounding_of_answer(b"<html>502 Bad Gateway</html>").chunks == []


def test_a_failed_search_is_read_from_the_functionResponse_the_CLI_sends_back() -> None:
    error = 'Error during web search for query "x": exception TypeError: fetch failed'
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "prompt"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "google_web_search", "args": {"query": "x"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "1", "name": "google_web_search", "response": {"error": error}}}]},
        ]
    }
    assert search_errors_of_request(json.dumps(body).encode()) == [error]
    ok = {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "google_web_search", "response": {"output": "Web search results"}}}]}]}
    assert search_errors_of_request(json.dumps(ok).encode()) == []


def test_an_exchange_yields_the_answers_grounding_and_the_requests_failed_searches() -> None:
    body = json.dumps(_answer(META)).encode()
    assert grounding_of_exchange(b"{}", 200, body).chunks == WANT
    # An error answer's body is not grounding.
    assert grounding_of_exchange(b"{}", 429, body) == Grounding()
