"""A research note's sources: resolved from the search's redirects, matched against what the
answer cites, written into the front matter, judged by ``is_grounded``, and kept to verified
links on the site. Against the fake API's own redirect links, on loopback."""

from __future__ import annotations

import pytest

from nh_assets.artifacts import read_front_matter, with_front_matter
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.formats.base import Built
from nh_assets.gemini.grounding import Grounding, GroundingChunk
from nh_assets.gemini.source_links import Bounds
from nh_assets.prompts.sources import DEAD, UNVERIFIED, attach, gather, judge_grounded, read_sources
from nh_assets.publishing.site.source_policy import day_sources

pytestmark = pytest.mark.fast

MADE_UP = "https://made-up.example/report"


@pytest.fixture()
def api():
    with FakeGeminiAPI() as server:
        yield server


def _note(api: FakeGeminiAPI, *, expire_one: bool = False):
    live = [api.web.redirect_for(api.base_url, f"/articles/0123abcd/{i}") for i in (1, 2)]
    grounding = Grounding([GroundingChunk(f"Source {i}", uri) for i, uri in enumerate(live, 1)], ["query"])
    if expire_one:  # a link issued by an earlier search that has already expired
        api.web.expire_redirects()
    answer = (
        f"# Note\n\nA claim [1].\n\nAlso see [the report]({MADE_UP}).\n\n## Sources\n\n"
        f"- [Source 1]({live[0]})\n- {live[1]}\n"
    )
    built = Built(with_front_matter(answer, {"prompt_id": "p", "date": "2026-11-22", "model": "m"}).encode())
    found = gather(grounding, answer, env={}, bounds=Bounds(per_link_s=5, total_s=10))
    return live, attach(built, found)


def test_the_note_keeps_final_urls_and_marks_what_no_search_returned(api) -> None:
    live, built = _note(api)
    text = built.content.decode()
    assert "grounding-api-redirect" not in text
    assert f"- [Source 1]({api.base_url}/articles/0123abcd/1)" in text
    assert f"- {api.base_url}/articles/0123abcd/2" in text
    assert f"[the report]({MADE_UP}) {UNVERIFIED}" in text
    recorded = read_sources(text)
    assert [(s.title, s.url, s.domain) for s in recorded.grounded] == [
        ("Source 1", f"{api.base_url}/articles/0123abcd/1", "127.0.0.1"),
        ("Source 2", f"{api.base_url}/articles/0123abcd/2", "127.0.0.1"),
    ]
    assert recorded.unverified == [MADE_UP] and recorded.queries == ["query"]
    assert read_front_matter(text)["prompt_id"] == "p"  # the note's own fields are kept
    assert built.metadata["nh.sources_grounded"].value == 2
    assert built.metadata["nh.sources_unverified"].value == 1
    assert judge_grounded(text, "2026-11-22").passed


def test_expired_redirects_are_dead_and_lose_their_link(api) -> None:
    _, built = _note(api, expire_one=True)
    text = built.content.decode()
    recorded = read_sources(text)
    assert recorded.grounded == [] and [d["error"] for d in recorded.dead] == ["HTTP 404", "HTTP 404"]
    assert f"- Source 1 {DEAD}" in text and "grounding-api-redirect" not in text
    verdict = judge_grounded(text, "2026-11-22")
    assert not verdict.passed and "all dead" in verdict.description


def test_a_failed_search_fails_is_grounded_even_with_sources_from_another_search(api) -> None:
    live, built = _note(api)
    text = built.content.decode().replace('search_errors: []', 'search_errors: ["Error during web search for query \\"q\\": 429"]')
    verdict = judge_grounded(text, "2026-11-22")
    assert not verdict.passed and "1 search(es) failed" in verdict.description
    assert not judge_grounded(with_front_matter("# Note", {"prompt_id": "p"}), "2026-11-22").passed


def test_the_site_links_only_the_days_final_urls(api) -> None:
    live, built = _note(api)
    links = day_sources([read_sources(built.content.decode()), None])
    final = f"{api.base_url}/articles/0123abcd/1"
    report = f"Per [a source]({final}/), [a redirect]({live[0]}) and [another]({MADE_UP}) {UNVERIFIED}."
    cleaned = links.markdown(report)
    assert cleaned == f"Per [a source]({final}/), a redirect {DEAD} and another {UNVERIFIED}."
    markup = links.markup(f'<a href="{final}">ok</a><a href="{MADE_UP}">no</a><a href="{live[1]}">r</a>')
    assert markup == f'<a href="{final}">ok</a><a>no</a><a>r</a>'
    assert links.counts() == (2, 1, 0)
    # A day collected before notes recorded sources keeps its links, less grounding redirects.
    legacy = day_sources([None])
    assert legacy.markdown(report) == f"Per [a source]({final}/), a redirect {DEAD} and [another]({MADE_UP}) {UNVERIFIED}."
    assert legacy.counts() == (None, None, None)
