"""The rule every model-written text artifact passes: it has content, and no CLI error text.

The Gemini CLI prints its failures on stdout in some modes; an answer holding them must never
be published as if the model wrote it. The markers are case-sensitive to keep ordinary prose
clear of them.
"""

from __future__ import annotations

from collections.abc import Callable

from nh_assets.formats.base import Rule, Verdict

CLEAN_CHECK = "output_is_clean"
CLI_ERROR_MARKERS: tuple[str, ...] = (
    "Error executing",
    "API Error",
    "GaxiosError",
    "Please set an Auth method",
    "status: 429",
)


def _around(text: str, marker: str) -> str:
    at = text.find(marker)
    return text[max(0, at - 40) : at + len(marker) + 80].replace("\n", " ").strip()


def judge_clean(text: str, body: str) -> Verdict:
    """``body`` is the readable content of ``text`` (no front matter, banner or page chrome)."""
    if not body.strip():
        return Verdict(False, "the artifact has no content beyond its front matter", {"nh.body_chars": 0})
    # The body, not the whole text: a degraded artifact quotes its failed inputs' causes in its
    # coverage notes, and those are ours, not the model's.
    found = [marker for marker in CLI_ERROR_MARKERS if marker in body]
    if found:
        return Verdict(
            False,
            f"the artifact holds Gemini CLI error text {', '.join(repr(m) for m in found)}: "
            f"…{_around(body, found[0])}…",
            {"nh.cli_errors": ", ".join(found)},
        )
    return Verdict(True, "non-empty and free of CLI error text", {"nh.body_chars": len(body.strip())})


def clean_rule(body_of: Callable[[str], str]) -> Rule:
    markers = ", ".join(CLI_ERROR_MARKERS)
    return Rule(
        CLEAN_CHECK,
        f"Non-empty, with no Gemini CLI error text ({markers}).",
        lambda text, _day: judge_clean(text, body_of(text)),
    )
