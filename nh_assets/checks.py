"""Asset checks on the day's artifacts, built from the registry rows (no per-prompt code).

What is checked follows each row's ``output_format``:

- markdown and html: the artifact has a body beyond its front matter and holds none of the
  Gemini CLI's error texts (``CLI_ERROR_MARKERS``) that a model answer must never contain;
- markdown rows whose prompt has a ``REQUIRED SECTIONS:`` block: every listed ``##`` section is
  present. The report the site payload is built from falls back to ``REPORT_SECTIONS`` when its
  prompt lists none;
- tags_json: the file is plain JSON matching ``TagsDocument`` (5–8 tags, 3–5 known categories);
- site_payload: the file matches ``SitePayload`` and is dated with its partition.

The checks are declared on the prompt assets (``check_specs_for``) and judged inside the asset's
own step on the bytes it has just written (``evaluate_checks``): no extra step, process or
file read per check, and a check always judges the artifact its asset produced. The price is
that a check cannot re-run alone; re-materializing the partition re-judges it.

Checks that guard publishing are ``blocking``: those on the site payload and on its same-day
inputs (the report and its tags). When one fails, Dagster records the materialization and the
verdict, then fails the step, so nothing downstream runs in that run; across runs the ``site``
asset validates each payload against the same schema and keeps the last good copy of a day whose
payload fails it (``publishing_site.collect``).

The check specs carry the asset's ``partitions_def`` (a preview feature of Dagster 1.13): only
then is a verdict stored for its partition, so each day's artifact has its own verdict,
re-materializing one day never overwrites another day's, and ``check_passed()`` in automation
conditions is per partition.

Freshness is a custom, unpartitioned ``report_on_time`` check rather than a ``FreshnessPolicy``:
a policy would have to be attached to the asset in the factory, is evaluated by a freshness
daemon that is off unless ``dagster.yaml`` enables it, and judges the latest materialization of
*any* partition, so a backfill of an old day would make a missing report look fresh; the
``build_*_freshness_checks`` factories are superseded in 1.13. The check asks the question the
operator has — "is today's partition (in ``NH_TIMEZONE``) materialized, and is it past
``NH_REPORT_DEADLINE_HOUR``?" — and runs from the deadline schedule's job, not in daily runs.
"""

import json
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import ValidationError

from nh_assets.artifacts import strip_front_matter
from nh_assets.output_formats import DEMO_BANNER
from nh_assets.registry import PromptSpec, Registry
from nh_assets.report_schema import REPORT_SECTIONS
from nh_assets.structured_outputs import SitePayload, TagsDocument

# Texts the Gemini CLI prints when it fails; case-sensitive to keep ordinary prose clear of them.
CLI_ERROR_MARKERS: tuple[str, ...] = (
    "Error executing",
    "API Error",
    "GaxiosError",
    "Please set an Auth method",
    "status: 429",
)
_SECTIONS_MARKER = re.compile(r"^[ \t]*REQUIRED SECTIONS:[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^##[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_TAG = re.compile(r"<[^>]+>")

CLEAN_CHECK = "output_is_clean"
SECTIONS_CHECK = "has_required_sections"
TAGS_CHECK = "tags_are_valid"
PAYLOAD_CHECK = "payload_matches_schema"
ON_TIME_CHECK = "report_on_time"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    name: str
    description: str
    judge: Callable[[str, str], Verdict]  # (artifact text, partition key) -> verdict


def required_sections(spec: PromptSpec) -> tuple[str, ...]:
    """The ``- Section`` lines following ``REQUIRED SECTIONS:`` in the row's prompt, in order."""
    match = _SECTIONS_MARKER.search(spec.prompt)
    if not match:
        return ()
    sections = []
    for line in spec.prompt[match.end() :].lstrip("\r\n").splitlines():
        stripped = line.strip()
        if not stripped.startswith("- "):
            break
        if stripped[2:].strip():
            sections.append(stripped[2:].strip())
    return tuple(sections)


def publishing_inputs(registry: Registry) -> set[str]:
    """Rows the site payload is built from: the same-day inputs of every site_payload row."""
    return {
        dep.prompt_id
        for spec in registry.prompts
        if spec.output_format == "site_payload"
        for dep in spec.depends_on
        if dep.is_same_day
    }


def sections_for(spec: PromptSpec, registry: Registry) -> tuple[str, ...]:
    if spec.output_format != "markdown":
        return ()
    listed = required_sections(spec)
    if listed:
        return listed
    return REPORT_SECTIONS if spec.prompt_id in publishing_inputs(registry) else ()


def guards_publishing(spec: PromptSpec, registry: Registry) -> bool:
    return spec.output_format == "site_payload" or spec.prompt_id in publishing_inputs(registry)


# -- verdicts: pure functions of an artifact's text -----------------------------------------------


def _cli_errors(text: str) -> list[str]:
    return [marker for marker in CLI_ERROR_MARKERS if marker in text]


def _around(text: str, marker: str) -> str:
    at = text.find(marker)
    return text[max(0, at - 40) : at + len(marker) + 80].replace("\n", " ").strip()


def judge_clean(text: str, output_format: str) -> Verdict:
    if output_format == "html":
        main = re.search(r"<main>(.*)</main>", text, re.DOTALL)
        body = _TAG.sub(" ", main.group(1) if main else text)
    else:
        body = strip_front_matter(text).replace(f"> {DEMO_BANNER}", "")
    if not body.strip():
        return Verdict(False, "the artifact has no content beyond its front matter", {"nh.body_chars": 0})
    found = _cli_errors(text)
    if found:
        return Verdict(
            False,
            f"the artifact holds Gemini CLI error text {', '.join(repr(m) for m in found)}: "
            f"…{_around(text, found[0])}…",
            {"nh.cli_errors": ", ".join(found)},
        )
    return Verdict(True, "non-empty and free of CLI error text", {"nh.body_chars": len(body.strip())})


def judge_sections(text: str, sections: Iterable[str]) -> Verdict:
    wanted = list(sections)
    present = [h.strip() for h in _HEADING.findall(strip_front_matter(text))]
    found = {h.casefold() for h in present}
    missing = [s for s in wanted if s.casefold() not in found]
    metadata: dict[str, object] = {
        "nh.sections_required": len(wanted),
        "nh.sections_found": dg.MetadataValue.json(present),
    }
    if missing:
        return Verdict(False, f"missing required ## section(s): {', '.join(missing)}", metadata)
    return Verdict(True, f"all {len(wanted)} required sections present", metadata)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return f"{where}: {first['msg']}"


def judge_tags(text: str) -> Verdict:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return Verdict(False, f"tags file is not valid JSON: {exc}")
    if not isinstance(doc, dict):
        return Verdict(False, f"tags file holds a JSON {type(doc).__name__}, not an object")
    try:
        tags = TagsDocument.model_validate(doc)
    except ValidationError as exc:
        return Verdict(False, f"tags JSON invalid at {_first_error(exc)}")
    return Verdict(
        True,
        f"{len(tags.tags)} tags, {len(tags.categories)} categories",
        {"nh.tags": ", ".join(tags.tags), "nh.categories": ", ".join(tags.categories)},
    )


def judge_payload(text: str, day: str) -> Verdict:
    try:
        payload = SitePayload.model_validate_json(text)
    except ValidationError as exc:
        return Verdict(False, f"site payload does not match the schema at {_first_error(exc)}")
    if payload.date != day:
        return Verdict(False, f"site payload is dated {payload.date}, not {day}")
    return Verdict(
        True,
        f"schema v{payload.schema_version}, {len(payload.sections)} sections",
        {"nh.sections": len(payload.sections), "nh.demo": payload.demo},
    )


# -- checks: one per (row, rule), judged in the asset's step -------------------------------------


def _rules_for(spec: PromptSpec, registry: Registry) -> list[_Rule]:
    fmt = spec.output_format
    rules = []
    if fmt in ("markdown", "html"):
        markers = ", ".join(CLI_ERROR_MARKERS)
        description = f"Non-empty, with no Gemini CLI error text ({markers})."
        rules.append(_Rule(CLEAN_CHECK, description, lambda t, _: judge_clean(t, fmt)))
    sections = sections_for(spec, registry)
    if sections:
        rules.append(
            _Rule(
                SECTIONS_CHECK,
                f"Has every required ## section: {', '.join(sections)}.",
                lambda t, _: judge_sections(t, sections),
            )
        )
    if fmt == "tags_json":
        description = "Plain JSON: 5–8 unique tags, 3–5 categories from the fixed list."
        rules.append(_Rule(TAGS_CHECK, description, lambda t, _: judge_tags(t)))
    if fmt == "site_payload":
        rules.append(_Rule(PAYLOAD_CHECK, "Matches the SitePayload schema, dated with its partition.", judge_payload))
    return rules


def check_specs_for(
    spec: PromptSpec, registry: Registry, *, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    """The checks the row's asset declares; ``partitions_def`` is the asset's own."""
    blocking = guards_publishing(spec, registry)
    # Partitioned checks are a preview feature in 1.13; they are what a daily artifact needs
    # (see the module docstring), so the warning is silenced here rather than for every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                rule.name,
                asset=spec.prompt_id,
                description=rule.description,
                blocking=blocking,
                partitions_def=partitions_def,
                metadata={"nh.output_template": spec.expected_outputs, "nh.registry_line": spec.line},
            )
            for rule in _rules_for(spec, registry)
        ]


def evaluate_checks(spec: PromptSpec, registry: Registry, text: str, day: str) -> list[dg.AssetCheckResult]:
    """One result per spec of ``check_specs_for``, judging ``text``: the artifact just written for ``day``."""
    results = []
    for rule in _rules_for(spec, registry):
        verdict = rule.judge(text, day)
        results.append(
            dg.AssetCheckResult(
                asset_key=spec.prompt_id,
                check_name=rule.name,
                passed=verdict.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=" ".join(f"{spec.prompt_id} {day}: {verdict.description}".split()),
                metadata=verdict.metadata,
            )
        )
    return results


# -- freshness: is today's report there by the deadline? ------------------------------------------


def report_lateness(
    *, now: datetime, deadline_hour: int, first_day: date, materialized_at: datetime | None
) -> Verdict:
    """Judge today's report at ``now`` (aware, in the operator's zone)."""
    today = now.date()
    deadline = datetime.combine(today, time(deadline_hour), tzinfo=now.tzinfo)
    due = f"{deadline:%H:%M} {now.tzname()}"
    metadata: dict[str, object] = {"nh.partition": today.isoformat(), "nh.deadline": deadline.isoformat()}
    if today < first_day:
        return Verdict(True, f"no report is due before the first partition {first_day}", metadata)
    if materialized_at is not None:
        metadata["nh.materialized_at"] = materialized_at.isoformat()
        late = (materialized_at - deadline).total_seconds() / 60
        if late > 0:
            metadata["nh.minutes_late"] = round(late)
            message = f"today's report ({today}) arrived {round(late)} min after the {due} deadline"
            return Verdict(True, message, metadata)
        return Verdict(True, f"today's report ({today}) arrived by {due}", metadata)
    if now < deadline:
        return Verdict(True, f"today's report ({today}) is not due until {due}", metadata)
    overdue = round((now - deadline).total_seconds() / 60)
    metadata["nh.minutes_overdue"] = overdue
    return Verdict(
        False,
        f"today's report ({today}) is late: not materialized by {due} ({overdue} min overdue) — "
        "look for a failed or missing neurohelix_daily run",
        metadata,
    )


def _now(zone: ZoneInfo) -> datetime:
    return datetime.now(zone)


def build_report_deadline_checks(
    registry: Registry, *, timezone: str, deadline_hour: int, first_day: date
) -> list[dg.AssetChecksDefinition]:
    """One unpartitioned ``report_on_time`` check per report row (the payload's markdown inputs)."""
    zone = ZoneInfo(timezone)
    reports = [
        spec
        for spec in registry.prompts
        if spec.output_format == "markdown" and spec.prompt_id in publishing_inputs(registry)
    ]

    def build(spec: PromptSpec) -> dg.AssetChecksDefinition:
        key = dg.AssetKey(spec.prompt_id)

        @dg.asset_check(
            asset=key,
            name=ON_TIME_CHECK,
            description=f"Today's partition (in {timezone}) is materialized by {deadline_hour:02d}:00.",
        )
        def _on_time(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            now = _now(zone)
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[now.date().isoformat()]), limit=1
            ).records
            materialized_at = datetime.fromtimestamp(records[0].timestamp, zone) if records else None
            verdict = report_lateness(
                now=now, deadline_hour=deadline_hour, first_day=first_day, materialized_at=materialized_at
            )
            return dg.AssetCheckResult(
                passed=verdict.passed, description=verdict.description, metadata=verdict.metadata
            )

        return _on_time

    return [build(spec) for spec in reports]
