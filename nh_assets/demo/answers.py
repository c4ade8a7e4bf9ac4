"""What the fake Gemini answers: deterministic, labelled text for the prompt it is sent.

The demo reads the prompt the way a model would read the instructions it was given: which
prompt it is, the response format, the sections and categories it was asked for. Everything it
writes says it is fake. Token counts are one per started block of four characters.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from typing import Any

FAKE_LABEL = "demo output from NeuroHelix fake Gemini"

_PROMPT_ID_RE = re.compile(r"^[ \t]*NEUROHELIX PROMPT:[ \t]*(?P<v>\S[^\r\n]*?)[ \t]*$", re.M)
_FORMAT_RE = re.compile(r"^[ \t]*RESPONSE FORMAT:[ \t]*(?P<v>[A-Za-z]+)[ \t]*$", re.M)
_CATEGORIES_RE = re.compile(r"^[ \t]*ALLOWED CATEGORIES:[ \t]*(?P<v>[^\r\n]*)$", re.M)
_SECTIONS_RE = re.compile(r"^[ \t]*REQUIRED SECTIONS:[ \t]*$", re.M)
_SENTENCES_RE = re.compile(r"^[ \t]*SENTENCES:[ \t]*(?P<v>[^\r\n]*)$", re.M)

_FILLER = [
    "This paragraph stands in for real analysis of {pid}; no model was called.",
    "The NeuroHelix fake Gemini generated this sentence deterministically for {pid}.",
    "In demo mode {pid} receives placeholder findings so the pipeline can run offline.",
    "Treat every claim here as fictional: {pid} was answered by a local test server.",
    "A real run of {pid} would summarise current AI research at this point.",
    "Sources, numbers and names for {pid} are intentionally omitted in demo output.",
]
_GENERIC_SECTIONS = ["Summary", "Key Points", "Notes"]
_DEFAULT_TAGS = ["ai-research", "neurohelix", "daily-digest", "machine-learning", "demo", "llm"]


# --------------------------------------------------------------------------- #
# Deterministic response generation
# --------------------------------------------------------------------------- #


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per started block of 4 characters."""
    return math.ceil(len(text) / 4)


def parse_prompt_contract(prompt: str) -> dict[str, Any]:
    """Extract the renderer's markers from *prompt* (first occurrence wins:
    the renderer writes its header before any pasted source material, and the
    CLI's ``<session_context>`` part carries no markers).

    Returns ``{"prompt_id", "format", "sections", "categories", "sentences"}``; missing
    markers give ``prompt_id="unlabelled-prompt"``, ``format="markdown"``.
    """
    m = _PROMPT_ID_RE.search(prompt)
    prompt_id = m.group("v") if m else "unlabelled-prompt"
    m = _FORMAT_RE.search(prompt)
    fmt = m.group("v").lower() if m else "markdown"
    if fmt not in ("markdown", "json", "html", "text"):
        fmt = "markdown"

    sections: list[str] = []
    m = _SECTIONS_RE.search(prompt)
    if m:
        for line in prompt[m.end():].lstrip("\r\n").splitlines():
            stripped = line.strip()
            if not stripped:
                break
            if stripped.startswith("- "):
                name = stripped[2:].strip()
                if name:
                    sections.append(name)
            else:
                break

    categories: list[str] = []
    m = _CATEGORIES_RE.search(prompt)
    if m:
        categories = [c.strip() for c in m.group("v").split(",") if c.strip()]
    m = _SENTENCES_RE.search(prompt)
    sentences = [part.strip() for part in m.group("v").split(";") if part.strip()] if m else []
    return {
        "prompt_id": prompt_id,
        "format": fmt,
        "sections": sections,
        "categories": categories,
        "sentences": sentences,
    }


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _bullets(prompt_id: str, salt: str) -> list[str]:
    seed = _seed(f"{prompt_id}\x00{salt}")
    n = 2 + seed % 2  # 2 or 3 bullets
    start = (seed >> 8) % len(_FILLER)
    return [_FILLER[(start + i) % len(_FILLER)].format(pid=prompt_id) for i in range(n)]


def _tags(prompt_id: str) -> list[str]:
    tags: list[str] = ["fake-gemini-demo"]
    words = [w for w in re.split(r"[^a-z0-9]+", prompt_id.lower()) if len(w) > 1]
    for candidate in words + _DEFAULT_TAGS:
        candidate = candidate[:24]
        if candidate not in tags:
            tags.append(candidate)
        if len(tags) == 6:
            break
    return tags


def render_fake_response(prompt: str) -> str:
    """Deterministic fake model answer for *prompt* (see module docstring)."""
    c = parse_prompt_contract(prompt)
    pid = c["prompt_id"]
    if c["format"] == "json":
        payload = {"tags": _tags(pid), "categories": c["categories"][:4]}
        return "```json\n" + json.dumps(payload, indent=2) + "\n```"
    if c["format"] == "text":
        # Plain prose, one sentence per part the prompt asks for (three for the morning brief).
        parts = c["sentences"] or ["the answer"]
        return " ".join(
            f"{part[0].upper()}{part[1:]} for {pid} is a placeholder written by the NeuroHelix fake Gemini, "
            "not by a model."
            for part in parts
        )
    if c["format"] == "html":
        esc = html.escape(pid)
        items = "".join(f"<li>{html.escape(b)}</li>" for b in _bullets(pid, "html"))
        return (
            f'<section class="nh-demo" data-fake="true">\n'
            f"<h2>{esc} ({FAKE_LABEL})</h2>\n"
            f"<p>This fragment was produced by the NeuroHelix fake Gemini server for {esc}; "
            f"it is placeholder content, not model output.</p>\n"
            f"<ul>{items}</ul>\n"
            f"</section>"
        )
    lines = [f"# {pid} ({FAKE_LABEL})", ""]
    for section in c["sections"] or _GENERIC_SECTIONS:
        lines.append(f"## {section}")
        lines.append("")
        lines.extend(f"- {b}" for b in _bullets(pid, section))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
