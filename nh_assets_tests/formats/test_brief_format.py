"""The morning brief's output contract: exactly three sentences, repaired where safe, refused otherwise."""

from __future__ import annotations

import pytest

from nh_assets.demo.answers import render_fake_response
from nh_assets.formats import FORMATS, Answer
from nh_assets.formats.brief import brief_sentences, judge_brief, split_sentences
from nh_assets.formats.contract import judge_answer
from nh_assets.prompts.rendering import render_prompt
from nh_assets.registry import load_registry
from nh_assets.settings import DEFAULT_REGISTRY_PATH

pytestmark = pytest.mark.fast

BRIEF = FORMATS["brief"]
THREE = (
    "Agent frameworks dominate the day, with three vendors shipping planners. "
    "Watch the EU AI Act's Dec. 2 guidance on general-purpose models first. "
    "Open weights now match closed models at 3.5x lower cost, e.g. on coding."
)


def _judge(text: str, demo: bool = False):
    return judge_answer(BRIEF, Answer("morning_brief", "2026-11-20", "gemini-2.5-flash", demo, text))


def test_three_sentences_are_accepted_one_per_line():
    judged = _judge(THREE)
    assert judged.outcome == "accepted"
    lines = judged.built.content.decode().splitlines()
    assert lines == split_sentences(THREE) and len(lines) == 3
    assert lines[1] == "Watch the EU AI Act's Dec. 2 guidance on general-purpose models first."


@pytest.mark.parametrize(
    "shape",
    [
        "**Morning brief**\n\n" + THREE,
        "# Brief\n" + "\n".join(f"- {s}" for s in split_sentences(THREE)),
        "```\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(split_sentences(THREE), 1)) + "\n```",
    ],
)
def test_a_heading_a_list_or_a_fence_is_repaired(shape):
    judged = _judge(shape)
    assert judged.outcome == "accepted" and judged.built.content.decode().splitlines() == split_sentences(THREE)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (THREE + " One more thing is worth watching.", "the answer has 4 sentences — write exactly three"),
        ("Agents dominate. Watch the EU.", "the answer has 2 sentences — write exactly three"),
        ("Agents dominate. Watch the EU. Open " + "very " * 70 + "cheap.", "sentence 3 has 72 words"),
        ("Agents dominate. Watch the EU. Open weights are", "the last sentence is unfinished"),
        ("I'm sorry, but I can't write that brief.", "refusal"),
    ],
)
def test_a_broken_brief_is_rejected_with_what_to_fix(text, complaint):
    judged = _judge(text)
    assert judged.outcome == "rejected" and judged.built is None
    assert complaint in judged.complaints[0]


def test_a_demo_brief_carries_the_banner_and_still_reads_as_three_sentences():
    content = _judge(THREE, demo=True).built.content.decode()
    assert content.startswith("> DEMO OUTPUT") and brief_sentences(content) == split_sentences(THREE)
    assert judge_brief(content).passed and not judge_brief(THREE + "\nFour.\n").passed


def test_the_fake_gemini_answers_the_rendered_prompt_with_three_sentences():
    spec = load_registry(DEFAULT_REGISTRY_PATH).by_id("morning_brief")
    prompt = render_prompt(spec, "2026-11-20", []).text
    assert "exactly three sentences" in prompt
    judged = _judge(render_fake_response(prompt), demo=True)
    assert judged.outcome == "accepted" and len(brief_sentences(judged.built.content.decode())) == 3
