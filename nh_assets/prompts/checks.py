"""Asset checks on the day's artifacts, built from the registry rows and the formats table.

What is checked comes from two explicit places, never from the prompt's prose:

- the row's ``output_format`` (``formats.FORMATS``): its rules, e.g. markdown and html have a body
  and no Gemini CLI error text, tags are valid JSON of the fixed categories, the payload matches
  its schema and is dated with its partition;
- the row's registry columns: ``required_sections`` adds a check that every listed ``##`` section
  is present, ``tools`` with ``google_web_search`` adds ``is_grounded`` (WARN: the searches
  succeeded and returned a source that resolves, ``prompts.sources``), and ``blocks_publishing``
  makes the row's checks blocking.

The output contract (``formats.contract``) has already refused unusable answers before anything
was written, so on a written artifact these checks confirm what the contract let through. The
one that can still fail by design is ``has_required_sections``: a report the model left a
section out of, even when asked again, is published with the gap noted, and the check says so
with severity WARN, which Dagster records without stopping what is built on the report.

The checks are declared on the prompt assets (``check_specs_for``) and judged inside the asset's
own step on the bytes it has just written (``evaluate_checks``): no extra step, process or
file read per check, and a check always judges the artifact its asset produced. The price is
that a check cannot re-run alone; re-materializing the partition re-judges it.

When a blocking check fails, Dagster records the materialization and the verdict, then fails the
step, so nothing downstream runs in that run; across runs the ``site`` asset validates each
payload against the same schema and keeps the last good copy of a day whose payload fails it
(``publishing.site.collect``).

The check specs carry the asset's ``partitions_def`` (a preview feature of Dagster 1.13): only
then is a verdict stored for its partition, so each day's artifact has its own verdict,
re-materializing one day never overwrites another day's, and ``check_passed()`` in automation
conditions is per partition.
"""

import re
import warnings

import dagster as dg

from nh_assets.formats import FORMATS, Rule
from nh_assets.formats.markdown import judge_sections
from nh_assets.prompts.sources import GROUNDED_CHECK, judge_grounded, searches
from nh_assets.registry import PromptSpec

SECTIONS_CHECK = "has_required_sections"
MODEL_CHECK = "answered_by_row_model"
# A response's modelVersion may name a pinned version of the model asked: gemini-2.5-flash-001,
# gemini-2.5-flash-preview-05-20. Another model (flash-lite for flash) is not such a suffix.
_VERSION_SUFFIX = re.compile(r"-(?:\d{3}|(?:preview|exp)-\d{2}-\d{2})")


def _rules_for(spec: PromptSpec) -> list[Rule]:
    rules = list(FORMATS[spec.output_format].rules())
    sections = spec.required_sections
    if sections:
        rules.append(
            Rule(
                SECTIONS_CHECK,
                f"Has every required ## section: {', '.join(sections)}.",
                lambda text, _day: judge_sections(text, sections),
                severity=dg.AssetCheckSeverity.WARN,
            )
        )
    if searches(spec.allowed_tools):
        rules.append(
            Rule(
                GROUNDED_CHECK,
                "Every web search succeeded and at least one source it returned still resolves.",
                judge_grounded,
                severity=dg.AssetCheckSeverity.WARN,
            )
        )
    return rules


def check_specs_for(spec: PromptSpec, *, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """The checks the row's asset declares; ``partitions_def`` is the asset's own."""
    # Partitioned checks are a preview feature in 1.13; they are what a daily artifact needs
    # (see the module docstring), so the warning is silenced here rather than for every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                rule.name,
                asset=spec.prompt_id,
                description=rule.description,
                blocking=spec.blocks_publishing,
                partitions_def=partitions_def,
                metadata={"nh.output_template": spec.expected_outputs, "nh.registry_line": spec.line},
            )
            for rule in _rules_for(spec)
        ]


def evaluate_checks(spec: PromptSpec, text: str, day: str) -> list[dg.AssetCheckResult]:
    """One result per spec of ``check_specs_for``, judging ``text``: the artifact just written for ``day``."""
    results = []
    for rule in _rules_for(spec):
        verdict = rule.judge(text, day)
        results.append(
            dg.AssetCheckResult(
                asset_key=spec.prompt_id,
                check_name=rule.name,
                passed=verdict.passed,
                severity=rule.severity,
                description=" ".join(f"{spec.prompt_id} {day}: {verdict.description}".split()),
                metadata=verdict.metadata,
            )
        )
    return results


def answered_by_allowed(spec: PromptSpec, answered_by: str) -> bool:
    """The row's model, or the fallback its registry row names, possibly as a pinned version."""
    allowed = [m for m in (spec.model, spec.fallback_model) if m]
    return any(
        answered_by == model
        or (answered_by.startswith(model) and _VERSION_SUFFIX.fullmatch(answered_by[len(model):]) is not None)
        for model in allowed
    )


def model_check_specs(spec: PromptSpec, *, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """A WARN check on every model row: the main answer came from the row's model (or its fallback).

    Routing or a silent fallback in the CLI can have another model write the answer; the day
    still publishes, and the check says so."""
    if not spec.uses_llm:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                MODEL_CHECK,
                asset=spec.prompt_id,
                description="The main answer came from the row's model, or the fallback_model the registry allows.",
                blocking=False,
                partitions_def=partitions_def,
                metadata={"nh.registry_line": spec.line},
            )
        ]


def model_check_result(spec: PromptSpec, day: str, answered_by: str) -> dg.AssetCheckResult:
    passed = answered_by_allowed(spec, answered_by)
    allowed = spec.model + (f" or its fallback {spec.fallback_model}" if spec.fallback_model else "")
    verdict = f"answered by {answered_by}" + ("" if passed else f", not by {allowed}")
    return dg.AssetCheckResult(
        asset_key=spec.prompt_id,
        check_name=MODEL_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{spec.prompt_id} {day}: {verdict}",
        metadata={"gemini.answered_by": dg.MetadataValue.text(answered_by)},
    )
