"""Asking the model until its answer meets the output contract, or the row's re-asks run out.

Each answer is judged (``formats.contract.judge_answer``) before anything is written. A rejected
or incomplete answer goes back to the model with the complaints (``rendering.render_reask``),
through the same ``gemini.generate`` call as the first question, up to the row's ``reasks``
(registry ``max_reasks``, else the format's default). Every answer is recorded with its verdict,
so the UI shows how many calls a day cost and what was wrong with each.

The outcome is the last usable answer: a complete one as soon as there is one; otherwise the
last incomplete one (published with its gaps noted). When no answer was usable, nothing is
written and the caller fails the step, so the previous good artifact stays in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from nh_assets.formats import FORMATS, Answer, Judged
from nh_assets.formats.contract import judge_answer
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.resource import GeminiCLIResource, GeminiResult, combined
from nh_assets.prompts.rendering import render_prompt, render_reask
from nh_assets.prompts.upstream import UpstreamArtifact
from nh_assets.registry import PromptSpec


@dataclass(frozen=True)
class Exchange:
    """One question and the verdict on its answer."""

    number: int
    result: GeminiResult
    judged: Judged

    def describe(self) -> dict[str, object]:
        return {
            "answer": self.number,
            "outcome": self.judged.outcome,
            "complaints": list(self.judged.complaints),
            "answer_chars": len(self.result.response),
        }


@dataclass
class Conversation:
    exchanges: list[Exchange] = field(default_factory=list)
    prompt_chars: int = 0
    truncated: Sequence[str] = ()

    @property
    def final(self) -> Exchange | None:
        """The answer to write: the one with the fewest gaps (the latest among equals), or None."""
        usable = [e for e in self.exchanges if e.judged.usable]
        return min(usable, key=lambda e: (len(e.judged.gaps), -e.number)) if usable else None

    def metadata(self) -> dict[str, object]:
        # What the day cost: every call of this attempt, not only the one whose answer was kept.
        metadata: dict[str, object] = dict(combined([e.result for e in self.exchanges]).metadata())
        metadata.update(
            {
                "nh.prompt_chars": dg.MetadataValue.int(self.prompt_chars),
                "nh.context_truncated": dg.MetadataValue.text(", ".join(self.truncated) or "none"),
                "nh.answers": dg.MetadataValue.int(len(self.exchanges)),
                "nh.reasks": dg.MetadataValue.int(len(self.exchanges) - 1),
                "nh.answer_log": dg.MetadataValue.json([e.describe() for e in self.exchanges]),
            }
        )
        return metadata

    def rejection(self) -> str:
        """One line for a conversation that produced nothing usable: what was wrong, last first."""
        last = self.exchanges[-1].judged
        return (
            f"no usable answer in {len(self.exchanges)} answer(s) (re-asked {len(self.exchanges) - 1} time(s) "
            f"with the complaints): {'; '.join(last.complaints)}"
        )


def converse(
    context: dg.AssetExecutionContext,
    spec: PromptSpec,
    day: str,
    upstream: list[UpstreamArtifact],
    gemini: GeminiCLIResource,
) -> Conversation:
    """Ask, judge, re-ask with the complaints; ``GeminiFailure`` from any call propagates."""
    fmt = FORMATS[spec.output_format]
    rendered = render_prompt(spec, day, upstream)
    if rendered.truncated:
        context.log.warning(f"context over budget; truncated: {', '.join(rendered.truncated)}")
    conversation = Conversation(prompt_chars=len(rendered.text), truncated=rendered.truncated)
    prompt = rendered.text
    call = ModelCall(
        model=spec.model,
        timeout_s=spec.timeout_sec,
        tools=spec.allowed_tools,
        temperature=spec.temperature,
        thinking_budget=spec.thinking_budget,
        approval_mode=spec.approval_mode,
        fallback_model=spec.fallback_model,
    )
    for number in range(1, spec.reasks + 2):
        result = gemini.generate(context, prompt=prompt, call=call)
        answer = Answer(
            spec.prompt_id, day, result.model, result.demo, result.response, upstream, spec.required_sections,
            fallback_from=result.fallback_from,
        )
        judged = judge_answer(fmt, answer)
        conversation.exchanges.append(Exchange(number, result, judged))
        if not judged.complaints:
            break
        if number <= spec.reasks:
            context.log.warning(
                f"answer {number} {judged.outcome}: {'; '.join(judged.complaints)} — asking again "
                f"({number}/{spec.reasks} re-asks)"
            )
            prompt = render_reask(rendered.text, result.response, judged.complaints)
    return conversation
