"""The output contract on crafted answers: what is normalized, what is a gap, what is refused.

Pure functions: each format's contract (``contract.judge_answer``) on the ways real models drift,
the coverage notes' round trip into the site payload, and the re-ask prompt.
"""

from __future__ import annotations

import json

import pytest

from nh_assets.formats import FORMATS, Answer
from nh_assets.formats.contract import is_refusal, judge_answer
from nh_assets.formats.coverage import Coverage, MissingInput, insert_notes, read_notes
from nh_assets.formats.site_payload import SitePayload, build_site_payload
from nh_assets.formats.tags_json import TagsDocument
from nh_assets.formats.vocabulary import REPORT_SECTIONS, TAG_CATEGORIES
from nh_assets.prompts.rendering import PROMPT_ARG_LIMIT_BYTES, render_reask
from nh_assets.prompts.upstream import UpstreamArtifact

pytestmark = pytest.mark.fast

DAY = "2026-11-20"
GOOD_TAGS = {"tags": ["agents", "chips", "open-weights", "eu-ai-act", "evals"], "categories": ["Models", "Research", "Hardware"]}


def _judge(output_format: str, text: str, *, sections=(), sources=()):
    answer = Answer("daily_aggregator", DAY, "gemini-2.5-pro", False, text, tuple(sources), tuple(sections))
    return judge_answer(FORMATS[output_format], answer)


def _report(headings) -> str:
    return "# Daily report\n\n" + "".join(f"{h}\n\n- a finding\n\n" for h in headings)


@pytest.mark.parametrize(
    "style",
    [
        lambda i, s: f"### {s}",
        lambda i, s: f"{i}. {s}",
        lambda i, s: f"**{s}**",
        lambda i, s: f"## {s.upper()}",
        lambda i, s: f"#### {i}) {s.replace('&', 'and')}:",
        lambda i, s: f"__{s.lower()}__",
        lambda i, s: s,
    ],
    ids=["h3", "numbered", "bold", "upper", "numbered-and-colon", "underline", "bare"],
)
def test_loose_headings_become_the_canonical_sections(style):
    judged = _judge("markdown", _report(style(i, s) for i, s in enumerate(REPORT_SECTIONS, 1)), sections=REPORT_SECTIONS)
    assert judged.outcome == "accepted" and judged.complaints == ()
    text = judged.built.content.decode()
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(REPORT_SECTIONS)


def test_list_items_and_sentences_naming_a_section_are_left_alone():
    text = "# R\n\n## Executive Summary\n\n- Market Dynamics\n* Developer Tools\n> Hardware Landscape\n"
    judged = _judge("markdown", text, sections=("Executive Summary", "Market Dynamics"))
    assert judged.outcome == "incomplete"
    assert "- Market Dynamics" in judged.built.content.decode()


def test_a_section_still_missing_is_a_gap_noted_in_the_report_and_the_payload():
    kept = [s for s in REPORT_SECTIONS if s != "Market Dynamics"]
    missing = UpstreamArtifact("developer_tools", DAY, f"outputs/daily/{DAY}/developer_tools.md", None, None, True, "failed: 400")
    judged = _judge("markdown", _report(f"## {s}" for s in kept), sections=REPORT_SECTIONS, sources=[missing])
    assert judged.outcome == "incomplete" and judged.problems == ()
    assert judged.gaps == ("the required section 'Market Dynamics' is missing — write it as its own `## Market Dynamics` heading, with its content below it",)
    text = judged.built.content.decode()
    assert "missing_inputs: developer_tools" in text and "missing_sections: Market Dynamics" in text
    assert read_notes(text) == Coverage((MissingInput("developer_tools", "failed: 400"),), ("Market Dynamics",))

    payload = build_site_payload(date=DAY, report_markdown=text, tags=TagsDocument.model_validate(GOOD_TAGS), demo=False)
    assert [m.model_dump() for m in payload.missing_inputs] == [{"prompt_id": "developer_tools", "reason": "failed: 400"}]
    assert payload.missing_sections == ["Market Dynamics"]
    assert [s.heading for s in payload.sections] == kept  # the notes are not a section


def test_payloads_written_before_the_coverage_fields_still_validate():
    old = build_site_payload(date=DAY, report_markdown=_report(f"## {s}" for s in REPORT_SECTIONS),
                             tags=TagsDocument.model_validate(GOOD_TAGS), demo=False).model_dump()
    del old["missing_inputs"], old["missing_sections"]
    assert SitePayload.model_validate(old).missing_inputs == []


def test_notes_go_under_the_title():
    text = insert_notes("# Title\n\nBody", Coverage((MissingInput("a", "why\nsecond line"),)))
    assert text.splitlines()[:3] == ["# Title", "", "> **Missing input:** `a` — why second line"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('```json\n{"tags": ["Agents", "chips", "open-weights", "eu-ai-act", "evals"], "categories": ["models", "Research", "hardware"]}\n```\nLet me know!', None),
        ('Here you go: {"tags": ["agents", "chips", "open-weights", "eu-ai-act", "evals"], "categories": ["Models", "Research", "Hardware"]} Hope it helps.', None),
        ("Tags: agents, chips, evals", "the answer holds no parseable JSON object"),
        ('```json\n{"tags": ["agents", "chips",], "categories": ["Models",]}\n```', "the answer holds no parseable JSON object"),
        ('{"tags": ["agents"], "categories": ["Models", "Research", "Hardware"]}', "tags JSON invalid at tags: List should have at least 5 items"),
        ('{"tags": ["a1", "b2", "c3", "d4", "e5"], "categories": ["Models", "Research", "Cooking"]}', "category 'Cooking' is not one of"),
    ],
    ids=["fenced-with-sentence", "prose-around", "prose-only", "trailing-commas", "too-few", "unknown-category"],
)
def test_tags_are_taken_from_fences_and_prose_and_refused_otherwise(answer, expected):
    judged = _judge("tags_json", answer)
    if expected is None:
        assert judged.outcome == "accepted"
        assert json.loads(judged.built.content) == GOOD_TAGS  # canonical: plain JSON, known spellings
    else:
        assert judged.outcome == "rejected" and judged.built is None
        assert expected in judged.problems[0]


@pytest.mark.parametrize("output_format", ["markdown", "tags_json", "html"])
@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("", "the answer was empty"),
        ("  \n\t\n", "the answer was empty"),
        ("I'm sorry, but I can't help with that request.", "the answer was a refusal"),
        ("I cannot browse the internet.", "the answer was a refusal"),
        ("## Summary\n\n[API Error: got status: 429 Too Many Requests]", "tool or API error text"),
    ],
    ids=["empty", "whitespace", "refusal", "cannot", "cli-error"],
)
def test_unusable_answers_are_refused_by_every_format(output_format, answer, words):
    judged = _judge(output_format, answer)
    assert judged.outcome == "rejected" and judged.built is None
    assert words in judged.problems[0]


def test_a_long_answer_mentioning_what_someone_cannot_do_is_not_a_refusal():
    report = "Unfortunately, regulators cannot agree on a definition of frontier models.\n\n" + "More analysis. " * 80
    assert not is_refusal(report)
    assert is_refusal("Unfortunately, I am unable to access real-time news.")


def test_html_with_nothing_safe_left_is_refused_and_safe_html_is_kept():
    assert _judge("html", "<script>alert(1)</script>").problems == ("the HTML answer is empty once unsafe markup is removed",)
    judged = _judge("html", '<section><h2>Today</h2><p onclick="x()">Three signals.</p><script>x</script></section>')
    page = judged.built.content.decode()
    assert judged.outcome == "accepted" and "Three signals." in page and "<script" not in page and "onclick" not in page


def test_the_reask_carries_the_original_the_answer_and_the_complaints():
    original = "NEUROHELIX PROMPT: tag_extractor\nDATE: 2026-11-20\nRESPONSE FORMAT: json\n\nExtract tags.\n"
    reask = render_reask(original, "Tags: agents", ["the answer holds no parseable JSON object"])
    assert reask.startswith(original)  # the header contract comes first, as the model first saw it
    assert "=== YOUR PREVIOUS ANSWER ===\nTags: agents\n=== END PREVIOUS ANSWER ===" in reask
    assert "- the answer holds no parseable JSON object" in reask


def test_the_reask_stays_within_one_command_line_argument():
    original = "NEUROHELIX PROMPT: daily_aggregator\n" + "x" * (PROMPT_ARG_LIMIT_BYTES - 5_000)
    reask = render_reask(original, "y" * 50_000, ["a complaint"] * 3)
    assert len(reask.encode()) <= PROMPT_ARG_LIMIT_BYTES
    assert "[… truncated" in reask and reask.startswith(original)


def test_categories_the_model_is_told_are_the_ones_the_contract_accepts():
    assert FORMATS["tags_json"].header_lines() == [f"ALLOWED CATEGORIES: {', '.join(TAG_CATEGORIES)}"]
