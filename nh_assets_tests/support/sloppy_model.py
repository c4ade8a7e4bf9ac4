"""A test model that reads the prompt like a careless real one: a subclass of the fake Gemini API.

It answers through the server's two hooks (``answer``, ``refusal``) and never through knowledge
of our validators: it writes what real models were seen to write when a day went wrong.

- ``daily_aggregator``: every section, but as ``###``, ``1.``, ``**Bold**`` or a bare line, in
  other cases and with "and" for "&" — and always without ``Hardware Landscape``;
- ``tag_extractor``: a list in prose, then JSON with a trailing comma, then fenced JSON with a
  sentence after it;
- ``hardware_compute``: an empty answer (whitespace) until the prompt says its previous answer was
  rejected, then a good one. The 0.61.0 CLI itself asks again when a stream ends empty (measured
  without tools: four requests, their whitespace concatenated, exit 0), so whatever it re-requests,
  one whole CLI call ends empty;
- ``ethics_alignment``: first a refusal, then a good one;
- ``morning_brief``: four sentences (a fourth "one more thing") until the prompt says its previous
  answer was rejected, then the three it was asked for;
- ``always_refuses`` (a prompt id): a refusal every time;
- ``always_fails`` (a prompt id): HTTP 400 on every request.

Everything else gets the demo's deterministic answer. Answers are counted per prompt id, so a
re-ask is the next answer in the list.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

from nh_assets.demo.answers import parse_prompt_contract, render_fake_response
from nh_assets.demo.api import FakeGeminiAPI

REFUSAL = "I'm sorry, but I can't help with that request."
ONE_MORE_THING = "One more thing worth watching is the pace of open releases."
DROPPED_SECTION = "Hardware Landscape"


def _loose_heading(index: int, name: str) -> str:
    looks = (
        f"### {name}",
        f"{index}. {name.upper()}",
        f"**{name.replace('&', 'and')}**",
        f"#### {index}) {name.lower()}:",
        name,
    )
    return looks[index % len(looks)]


def _loose_report(prompt: str) -> str:
    lines = ["# Daily AI report", "", "Here is today's report.", ""]
    for index, name in enumerate(parse_prompt_contract(prompt)["sections"], 1):
        if name == DROPPED_SECTION:
            continue
        lines += [_loose_heading(index, name), "", f"- Something happened in {name.lower()} today.", ""]
    return "\n".join(lines)


def _tags(prompt: str, attempt: int) -> str:
    categories = parse_prompt_contract(prompt)["categories"][:3]
    tags = ["agents", "open weights", "chips", "eu ai act", "evals"]
    if attempt == 1:
        return "Sure! Good tags for today would be: " + ", ".join(tags) + "."
    if attempt == 2:
        return '```json\n{"tags": ["agents", "chips",], "categories": ["Models",]}\n```'
    return "```json\n" + json.dumps({"tags": tags, "categories": categories}) + "\n```\nLet me know if you need more tags."


class SloppyModel(FakeGeminiAPI):
    def __init__(self, *, always_fails: str, always_refuses: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.always_fails = always_fails
        self.always_refuses = always_refuses
        self.answers: Counter[str] = Counter()
        self._answers_lock = threading.Lock()

    def refusal(self, model: str, prompt: str) -> int | None:
        return 400 if parse_prompt_contract(prompt)["prompt_id"] == self.always_fails else None

    def answer(self, model: str, prompt: str) -> str:
        prompt_id = parse_prompt_contract(prompt)["prompt_id"]
        with self._answers_lock:
            self.answers[prompt_id] += 1
            attempt = self.answers[prompt_id]
        if prompt_id == "daily_aggregator":
            return _loose_report(prompt)
        if prompt_id == "tag_extractor":
            return _tags(prompt, attempt)
        # Empty until told its answer was rejected: however often the CLI re-requests an empty stream
        # (four requests without tools, fewer after a search), one whole CLI call ends empty.
        if prompt_id == "hardware_compute" and "YOUR PREVIOUS ANSWER WAS REJECTED" not in prompt:
            return "  \n\n "
        if prompt_id == "morning_brief" and "YOUR PREVIOUS ANSWER WAS REJECTED" not in prompt:
            return render_fake_response(prompt) + " " + ONE_MORE_THING
        if prompt_id == self.always_refuses or (prompt_id == "ethics_alignment" and attempt == 1):
            return REFUSAL
        return render_fake_response(prompt)


def prompt_id_of(prompt: str) -> str:
    match = re.search(r"NEUROHELIX PROMPT:\s*(\S+)", prompt)
    return match.group(1) if match else ""
