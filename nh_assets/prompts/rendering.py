"""Turning a registry row and its upstream artifacts into the one prompt the model receives.

The inputs are explicit: each upstream artifact is pasted into the prompt under a named source
header, so the model needs no file tools and the prompt alone explains the answer. The header
lines (``NEUROHELIX PROMPT``, ``RESPONSE FORMAT``, ``ALLOWED CATEGORIES``) are a stable contract
that the project's fake Gemini also reads.

Context is capped twice: by the row's ``token_budget`` (about four characters a token) and by
what Linux accepts as one command-line argument (the CLI takes the prompt via ``-p``, and
``MAX_ARG_STRLEN`` is 128 KiB), whichever is smaller. Over budget, every source gets a fair
share and long ones are cut with a visible marker.

A rejected answer is sent back as a follow-up (``render_reask``): the original prompt unchanged
(so the header contract still comes first), the previous answer, and the contract's complaints
verbatim, the way structured-output libraries retry on a validation error. The CLI keeps no
conversation between calls, so the follow-up has to carry all three itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nh_assets.registry import PromptSpec
from nh_assets.formats import FORMATS
from nh_assets.prompts.upstream import UpstreamArtifact

CHARS_PER_TOKEN = 4
PROMPT_ARG_LIMIT_BYTES = 120_000
TRUNCATION_MARKER = "\n[… truncated to fit the token budget]"
# Bump when the rendering below changes in a way that changes what the model is asked.
RENDER_VERSION = "1"
# How much of a rejected answer goes back to the model: enough to fix it, not a second context.
REASK_ANSWER_CHARS = 12_000
REASK_COMPLAINT_CHARS = 400

@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    included: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _fair_shares(lengths: list[int], budget: int) -> list[int]:
    """Water-filling: short sources keep everything, the rest split what remains equally."""
    shares = [0] * len(lengths)
    remaining = max(budget, 0)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for position, index in enumerate(order):
        fair = remaining // (len(order) - position)
        shares[index] = min(lengths[index], fair)
        remaining -= shares[index]
    return shares


def context_budget_chars(spec: PromptSpec) -> int:
    return min(spec.token_budget * CHARS_PER_TOKEN, PROMPT_ARG_LIMIT_BYTES)


def render_prompt(spec: PromptSpec, day: str, upstream: list[UpstreamArtifact]) -> RenderedPrompt:
    fmt = FORMATS[spec.output_format]
    head = [
        f"NEUROHELIX PROMPT: {spec.prompt_id}",
        f"DATE: {day}",
        f"RESPONSE FORMAT: {fmt.response_line}",
        *fmt.header_lines(),
        "",
        spec.prompt.strip(),
    ]
    if spec.required_sections:
        # The registry's list, spelled out for the model exactly as the check will read it.
        head += ["", "REQUIRED SECTIONS:", *(f"- {section}" for section in spec.required_sections)]
    head += ["", fmt.instruction]
    header = "\n".join(head)

    present = [a for a in upstream if a.present]
    missing = [f"{a.prompt_id}@{a.partition}" for a in upstream if not a.present]
    labels = [f"{a.prompt_id} for {a.partition} ({a.relative_path})" for a in present]
    frame = sum(len(f"\n=== SOURCE {i}: {label} ===\n\n=== END SOURCE {i} ===\n") for i, label in enumerate(labels, 1))
    overhead = len(header.encode()) + frame + len(TRUNCATION_MARKER) * len(present) + 400
    budget = context_budget_chars(spec) - overhead
    bodies = [a.text or "" for a in present]
    shares = _fair_shares([len(b.encode()) for b in bodies], budget)

    parts = [header]
    if upstream:
        parts.append(f"\nSOURCE MATERIAL: {len(present)} artifact(s) produced earlier by the NeuroHelix pipeline.")
    truncated = []
    for i, (artifact, label, body, share) in enumerate(zip(present, labels, bodies, shares), 1):
        encoded = body.encode()
        if len(encoded) > share:
            body = encoded[:share].decode("utf-8", errors="ignore") + TRUNCATION_MARKER
            truncated.append(f"{artifact.prompt_id}@{artifact.partition}")
        parts.append(f"\n=== SOURCE {i}: {label} ===\n{body.strip()}\n=== END SOURCE {i} ===")
    if missing:
        parts.append("\nNot available (no output for that day): " + ", ".join(missing))
    failed_today = [a for a in upstream if a.same_day and not a.present]
    if failed_today:
        parts.append(
            "Missing today (work from the sources above and do not invent what these would have said): "
            + "; ".join(f"{a.prompt_id} ({a.missing_reason or 'not materialized'})" for a in failed_today)
        )
    return RenderedPrompt(
        text="\n".join(parts) + "\n",
        included=[f"{a.prompt_id}@{a.partition}" for a in present],
        truncated=truncated,
        missing=missing,
    )


def render_reask(original: str, answer: str, complaints: Sequence[str]) -> str:
    """The follow-up prompt after a rejected answer: the original, the answer, what was wrong."""
    listed = "\n".join(f"- {' '.join(c.split())[:REASK_COMPLAINT_CHARS]}" for c in complaints)
    tail = (
        "\n\nYOUR PREVIOUS ANSWER WAS REJECTED for these reasons:\n"
        f"{listed}\n\n"
        "Answer the original request again, in full, fixing every point above and keeping to the "
        "RESPONSE FORMAT. Do not apologise or comment on the correction.\n"
    )
    room = PROMPT_ARG_LIMIT_BYTES - len(original.encode()) - len(tail.encode()) - 200
    excerpt = answer.strip().encode()[: max(0, min(REASK_ANSWER_CHARS, room))].decode("utf-8", errors="ignore")
    if len(excerpt) < len(answer.strip()):
        excerpt += TRUNCATION_MARKER
    previous = f"\n=== YOUR PREVIOUS ANSWER ===\n{excerpt or '(empty)'}\n=== END PREVIOUS ANSWER ===" if room > 0 else ""
    return original.rstrip("\n") + "\n" + previous + tail
