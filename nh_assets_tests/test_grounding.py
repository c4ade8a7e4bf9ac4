"""The gate's reading of grounding: every answer shape the CLI receives, and failed searches."""

from __future__ import annotations

import json

import pytest

from nh_assets.gemini.grounding import Grounding, GroundingChunk, grounding_of_answer, search_errors_of_request, tee_grounding

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


def test_tee_passes_bytes_unchanged_and_records_once_at_the_end() -> None:
    body = json.dumps(_answer(META)).encode()
    pieces = [body[:10], body[10:]]
    recorded: list[Grounding] = []
    out = list(tee_grounding(b"{}", 200, iter(pieces), recorded.append))
    assert out == pieces
    assert len(recorded) == 1 and recorded[0].chunks == WANT
    # An error answer's body is not grounding, and nothing is recorded for it.
    recorded.clear()
    list(tee_grounding(b"{}", 429, iter([body]), recorded.append))
    assert recorded == []


def test_merging_keeps_each_source_once() -> None:
    merged = Grounding()
    merged.add(grounding_of_answer(json.dumps(_answer(META)).encode()))
    merged.add(grounding_of_answer(json.dumps(_answer(META)).encode()))
    assert merged.chunks == WANT
    assert Grounding.from_json(merged.to_json()) == merged


@pytest.mark.parametrize("gate_class", ["ApiGate", "MeteredGate"])
@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse"])
def test_the_gate_records_what_a_search_returned_and_forwards_it_unchanged(gate_class: str, method: str) -> None:
    import urllib.request

    from nh_assets.demo.api import FakeGeminiAPI
    from nh_assets.gemini.acp.metered_gate import MeteredGate
    from nh_assets.gemini.api_gate import ApiGate

    body = {"contents": [{"role": "user", "parts": [{"text": "chip export rules"}]}], "tools": [{"googleSearch": {}}]}
    with FakeGeminiAPI() as api:
        gate = {"ApiGate": ApiGate, "MeteredGate": MeteredGate}[gate_class](api.base_url, lambda: 0.0)
        try:
            gate.begin()
            request = urllib.request.Request(
                f"{gate.url}/v1beta/models/gemini-3-flash-preview:{method}", data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"}, method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                forwarded = response.read()
            found = gate.ledger().grounding
        finally:
            gate.close()
    assert found.queries == ["chip export rules"]
    assert len(found.chunks) == 3 and all("/grounding-api-redirect/" in c.uri for c in found.chunks)
    # What the CLI received names the same sources, byte for byte as the API sent them.
    assert grounding_of_answer(forwarded).chunks == found.chunks
