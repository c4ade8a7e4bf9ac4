"""Registry row → daily-partitioned asset. No prompt is special-cased here.

Everything that differs between prompts (key, group, description, kind, pool, dependencies with
their day offsets, model, timeout, retries, output path and format) comes from the row. The
``code_version`` hashes every field that changes what the model is asked or what is written, so
editing a prompt marks it and everything downstream stale in the UI.

Retries use Dagster's own ``RetryRequested``: each attempt is a visible step retry in the UI,
with exponential backoff and jitter chosen from the classified failure (long after a 429, none
after an auth or configuration error, which fail at once with the fix in the message).

A bad *answer* is not a failed call: the model is asked again with the contract's complaints
inside the same step (``conversation``), and only an answer the contract accepts is written.
When none is usable the step fails without retry (the re-asks were the retries) and the
previous artifact stays. A research row's note (its tools include ``google_web_search``) gets
its sources, resolved in the step while the search's links still answer (``sources``). Rows
with same-day inputs carry the catch-up condition (``catch_up``) that builds them from what
exists once an input has failed for good.
"""


import hashlib
import json
import time
import warnings
from datetime import date
from typing import Callable

import dagster as dg

from nh_assets.artifacts import write_atomic
from nh_assets.data_layout import DataLayoutResource
from nh_assets.formats import FORMATS, Answer, Built
from nh_assets.formats.contract import judge_answer
from nh_assets.gemini.failures import FailureKind, GeminiFailure
from nh_assets.gemini.resource import GeminiCLIResource, combined
from nh_assets.pools import CLASS_TAG, pool_name
from nh_assets.prompts.catch_up import catch_up_condition
from nh_assets.prompts.checks import check_specs_for, evaluate_checks, model_check_result, model_check_specs
from nh_assets.prompts.conversation import converse
from nh_assets.prompts.missing_inputs import why_missing
from nh_assets.prompts.rendering import RENDER_VERSION
from nh_assets.prompts.sources import attach, gather, searches
from nh_assets.prompts.upstream import MissingSameDayInput, UpstreamArtifact, collect_upstream
from nh_assets.registry import BUILTIN_MODEL, Dependency, PromptSpec, Registry


def code_version(spec: PromptSpec, system_prompt: str = "") -> str:
    policy: dict[str, object] = {
        "prompt": spec.prompt,
        "model": spec.model,
        "tools": list(spec.tools),
        "temperature": spec.temperature,
        "token_budget": spec.token_budget,
        "output_format": spec.output_format,
        "expected_outputs": spec.expected_outputs,
        "depends_on": [str(d) for d in spec.depends_on],
        "render_version": RENDER_VERSION,
        # Only when set, so rows without sections keep the code version they had before the column.
        **({"required_sections": list(spec.required_sections)} if spec.required_sections else {}),
        **({"thinking_budget": spec.thinking_budget} if spec.thinking_budget is not None else {}),
    }
    if spec.uses_llm:
        # What every call is told before the prompt: editing the system prompt re-runs every model row.
        policy["system_prompt"] = hashlib.sha256(system_prompt.encode()).hexdigest()
    return hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:16]


def _partition_mapping(dep: Dependency) -> dg.PartitionMapping | None:
    if dep.is_same_day:
        return None
    # History before the first partition does not exist; it must not block the first days.
    # The flag is marked beta in Dagster 1.13 but is the documented way to say exactly that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.TimeWindowPartitionMapping(
            start_offset=dep.start_offset,
            end_offset=dep.end_offset,
            allow_nonexistent_upstream_partitions=True,
        )


def _description(spec: PromptSpec) -> str:
    deps = ", ".join(f"`{d}`" for d in spec.depends_on) or "none"
    if any(d.optional for d in spec.depends_on):
        deps += " (`?`: optional, the artifact names what is missing)"
    lines = [
        f"**{spec.title}** — {spec.notes}" if spec.notes else f"**{spec.title}**",
        "",
        f"- output: `{spec.expected_outputs}` ({spec.output_format})",
        f"- model: `{spec.model}` · tools: `{', '.join(spec.tools) or 'none'}` · concurrency: {spec.concurrency_class}",
        f"- timeout {spec.timeout_sec}s · up to {spec.max_retries} retries · {spec.reasks} re-asks of a "
        f"rejected answer · token budget {spec.token_budget}",
        f"- depends on: {deps}",
    ]
    return "\n".join(lines)


def _build_prompt_asset(
    *,
    spec: PromptSpec,
    registry: Registry,
    partitions_def: dg.DailyPartitionsDefinition,
    first_day: date,
    system_prompt: str,
) -> dg.AssetsDefinition:
    deps = [dg.AssetDep(dep.prompt_id, partition_mapping=_partition_mapping(dep)) for dep in spec.depends_on]
    fmt = FORMATS[spec.output_format]

    @dg.asset(
        name=spec.prompt_id,
        group_name=spec.wave,
        description=_description(spec),
        kinds={"gemini" if spec.uses_llm else "python", fmt.kind},
        code_version=code_version(spec, system_prompt),
        partitions_def=partitions_def,
        deps=deps,
        check_specs=[
            *check_specs_for(spec, partitions_def=partitions_def),
            *model_check_specs(spec, partitions_def=partitions_def),
        ],
        automation_condition=catch_up_condition(spec, partitions_def.timezone),
        pool=pool_name(spec.concurrency_class) if spec.uses_llm else None,
        tags={"nh/wave": spec.wave, "nh/category": spec.category.lower().replace(" ", "_")},
        # The executor's in-run copy of the pool limits counts steps by this tag (pools.py).
        op_tags={CLASS_TAG: spec.concurrency_class} if spec.uses_llm else None,
        metadata={
            "nh.output_template": spec.expected_outputs,
            "nh.output_format": spec.output_format,
            "nh.model": spec.model,
            "nh.concurrency_class": spec.concurrency_class,
            "nh.depends_on": ", ".join(str(d) for d in spec.depends_on) or "none",
            "nh.registry_line": spec.line,
        },
    )
    def _prompt_asset(
        context: dg.AssetExecutionContext, gemini: GeminiCLIResource, layout: DataLayoutResource
    ) -> dg.MaterializeResult:
        day = context.partition_key
        attempt = context.retry_number + 1
        started = time.monotonic()
        try:
            upstream = collect_upstream(
                spec,
                registry,
                day=date.fromisoformat(day),
                first_day=first_day,
                data_root=layout.root_path,
                why_missing=lambda prompt_id, upstream_day: why_missing(context.instance, prompt_id, upstream_day),
            )
        except MissingSameDayInput as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

        try:
            if spec.uses_llm:
                built, metadata = _generate(context, spec, day, upstream, gemini, attempt)
            else:
                built, metadata = _compute(spec, day, upstream), {}
        except GeminiFailure as failure:
            _fail_or_retry(context, spec, failure, gemini.backoff_seconds, attempt)

        relative = spec.output_path(day)
        written = write_atomic(layout.root_path / relative, built.content)
        text = built.content.decode("utf-8", errors="replace")
        metadata.update(built.metadata)
        metadata.update(
            {
                "path": dg.MetadataValue.path(str(written.path)),
                "nh.relative_path": dg.MetadataValue.text(str(relative)),
                "sha256": dg.MetadataValue.text(written.sha256),
                "bytes": dg.MetadataValue.int(written.size_bytes),
                "nh.attempts": dg.MetadataValue.int(attempt),
                "nh.duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
                "nh.upstream": dg.MetadataValue.json([a.describe() for a in upstream]),
                "preview": fmt.preview(text),
            }
        )
        # Judged on the bytes just written; a failed blocking check fails the step after the
        # materialization is recorded, so nothing downstream runs on this artifact.
        checks = evaluate_checks(spec, text, day)
        if spec.uses_llm:
            checks.append(model_check_result(spec, day, str(getattr(metadata["gemini.answered_by"], "value", ""))))
        return dg.MaterializeResult(
            metadata=metadata, data_version=dg.DataVersion(written.sha256), check_results=checks
        )

    return _prompt_asset


def _generate(
    context: dg.AssetExecutionContext,
    spec: PromptSpec,
    day: str,
    upstream: list[UpstreamArtifact],
    gemini: GeminiCLIResource,
    attempt: int,
) -> tuple[Built, dict[str, object]]:
    conversation = converse(context, spec, day, upstream, gemini)
    metadata = conversation.metadata()
    final = conversation.final
    if final is None:
        # The re-asks were this answer's retries; a step retry would only ask the same way again.
        raise dg.Failure(
            description=f"{spec.prompt_id}: {conversation.rejection()} — the previous artifact, if any, is kept",
            metadata={
                "nh.failure_kind": FailureKind.BAD_OUTPUT.value,
                "nh.attempts": attempt,
                **{k: v for k, v in metadata.items() if k.startswith("nh.")},
            },
            allow_retries=False,
        )
    if final.judged.gaps:
        context.log.warning(f"published with gaps after {len(conversation.exchanges)} answer(s): {'; '.join(final.judged.gaps)}")
    metadata["nh.kept_answer"] = dg.MetadataValue.int(final.number)
    assert final.judged.built is not None
    if not searches(spec.allowed_tools):
        return final.judged.built, metadata
    # Resolved now, while the search's redirect links still answer; every answer's searches count.
    grounding = combined([e.result for e in conversation.exchanges]).gate.grounding
    found = gather(grounding, final.result.response, env=gemini.link_env())
    for source in found.dead:
        context.log.warning(f"source {source['title']!r} did not resolve: {source['error']}")
    return attach(final.judged.built, found), metadata


def _compute(spec: PromptSpec, day: str, upstream: list[UpstreamArtifact]) -> Built:
    """A ``builtin`` row: the same contract, with inputs instead of a model's answer."""
    judged = judge_answer(FORMATS[spec.output_format], Answer(spec.prompt_id, day, BUILTIN_MODEL, False, "", upstream))
    if judged.built is None:
        raise dg.Failure(
            description=f"{spec.prompt_id} {day}: {'; '.join(judged.problems)}",
            metadata={"nh.failure_kind": FailureKind.BAD_OUTPUT.value},
            allow_retries=False,
        )
    return judged.built


def _fail_or_retry(
    context: dg.AssetExecutionContext,
    spec: PromptSpec,
    failure: GeminiFailure,
    backoff: Callable[[GeminiFailure, int], float],
    attempt: int,
) -> None:
    if failure.kind.retryable and context.retry_number < spec.max_retries:
        wait = backoff(failure, context.retry_number)
        context.log.warning(
            f"attempt {attempt}/{spec.max_retries + 1} failed ({failure.kind.value}: {failure.cause}); "
            f"retrying in {wait:.1f}s"
        )
        raise dg.RetryRequested(max_retries=spec.max_retries, seconds_to_wait=wait) from None
    tried = f" after {attempt} attempt(s)" if failure.kind.retryable else ""
    raise dg.Failure(
        description=f"{spec.prompt_id}: {failure}{tried}",
        metadata={"nh.failure_kind": failure.kind.value, "nh.attempts": attempt},
        allow_retries=False,
    ) from None


def build_prompt_assets(
    registry: Registry, partitions_def: dg.DailyPartitionsDefinition, first_day: date, *, system_prompt: str
) -> list[dg.AssetsDefinition]:
    return [
        _build_prompt_asset(
            spec=spec, registry=registry, partitions_def=partitions_def, first_day=first_day, system_prompt=system_prompt
        )
        for spec in registry.prompts
    ]
