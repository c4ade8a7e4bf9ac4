"""From the instance and the data tree to the site's own copy of each day (``site_src/``).

Which prompt plays which part on a day page comes from the registry's lineage, not from names:
the payload is the ``site_payload`` row, the report and tags are what it reads, the dashboard is
the ``html`` row, research notes are markdown rows that read nothing, and the *analyses* are
markdown rows that read other outputs but that the report does not read (``continuity_builder``
and ``meta_project_explorer`` today: readers never saw them before the site), and the morning
brief is the ``brief`` row (three sentences that open the day, when that row succeeded).

A day is collected again only when Dagster's record of it changed: for every prompt, the latest
materialization and failure storage ids per partition (two indexed queries per asset, however
many days) form the day's signature, kept in ``_collected.json``. Days with a payload on disk but
no copy yet (an imported tree) are collected too. A day whose payload is gone (retention) keeps
its copy untouched: that is the point of the copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from nh_assets.artifacts import strip_front_matter, write_atomic
from nh_assets.formats import FORMATS
from nh_assets.formats.brief import brief_sentences
from nh_assets.prompts.sources import read_sources
from nh_assets.registry import PromptSpec, Registry

from .day_input import (
    DAY_FILE, DayInput, DayInputError, Kpis, Note, PublishedPayload, Source, day_files, parse_payload, write_day,
)
from .html_policy import sanitize_html
from .markdown_render import extract_sources
from .source_policy import DaySources, day_sources

STATE_FILE = "_collected.json"
_MAIN = re.compile(r"<main\b[^>]*>(?P<inner>.*)</main>", re.DOTALL | re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>(?P<inner>.*)</body>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class SiteRoles:
    payload: PromptSpec
    report: PromptSpec | None
    tags: PromptSpec | None
    dashboard: PromptSpec | None
    brief: PromptSpec | None
    notes: tuple[PromptSpec, ...]
    analyses: tuple[PromptSpec, ...]
    prompts: tuple[PromptSpec, ...]


def site_roles(registry: Registry) -> SiteRoles | None:
    """The parts of a day page, read off the registry; None without a site payload row."""
    # Roles come from what each row's format is (the formats table), never from format names.
    payload = next((p for p in registry.prompts if FORMATS[p.output_format].published), None)
    if payload is None:
        return None
    by_id = {p.prompt_id: p for p in registry.prompts}
    same_day = [by_id[d.prompt_id] for d in payload.depends_on if d.is_same_day and d.prompt_id in by_id]
    report = next((p for p in same_day if FORMATS[p.output_format].has_sections), None)
    tags = next((p for p in same_day if FORMATS[p.output_format].kind == "json"), None)
    read_by_report = {d.prompt_id for d in report.depends_on if d.is_same_day} if report else set()
    markdown = [p for p in registry.prompts if FORMATS[p.output_format].has_sections and p is not report]
    return SiteRoles(
        payload=payload,
        report=report,
        tags=tags,
        dashboard=next((p for p in registry.prompts if FORMATS[p.output_format].kind == "html"), None),
        brief=next((p for p in registry.prompts if FORMATS[p.output_format].kind == "text"), None),
        notes=tuple(p for p in markdown if not p.depends_on),
        analyses=tuple(p for p in markdown if p.depends_on and p.prompt_id not in read_by_report),
        prompts=tuple(registry.prompts),
    )


@dataclass
class CollectResult:
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)  # one line each: cause — fix


@dataclass(frozen=True)
class _DayRecords:
    materialized: dict[str, int]  # prompt id → latest materialization storage id
    failed: dict[str, int]  # prompt id → latest failure storage id

    def signature(self) -> str:
        doc = {"m": sorted(self.materialized.items()), "f": sorted(self.failed.items())}
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:20]


def _records_by_day(instance: dg.DagsterInstance, roles: SiteRoles) -> dict[str, _DayRecords]:
    days: dict[str, _DayRecords] = {}
    for spec in roles.prompts:
        key = dg.AssetKey(spec.prompt_id)
        for kind, event_type in (
            ("materialized", dg.DagsterEventType.ASSET_MATERIALIZATION),
            ("failed", dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE),
        ):
            for day, storage_id in instance.get_latest_storage_id_by_partition(key, event_type).items():
                getattr(days.setdefault(day, _DayRecords({}, {})), kind)[spec.prompt_id] = storage_id
    return days


def _kpis(instance: dg.DagsterInstance, roles: SiteRoles, records: _DayRecords | None, notes: int) -> Kpis:
    kpis = Kpis(domains=notes, prompts_total=len(roles.prompts))
    if records is None:
        return kpis
    kpis.prompts_run = len(records.materialized)
    kpis.prompts_failed = sum(
        1 for pid, fail_id in records.failed.items() if fail_id > records.materialized.get(pid, -1)
    )
    tokens, seconds, seen_tokens = 0, 0.0, False
    for pid, storage_id in records.materialized.items():
        found = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(pid), storage_ids=[storage_id]), limit=1
        ).records
        if not found or found[0].asset_materialization is None:
            continue
        metadata = found[0].asset_materialization.metadata
        if "gemini.total_tokens" in metadata:
            tokens += int(metadata["gemini.total_tokens"].value)
            seen_tokens = True
        if "nh.duration_s" in metadata:
            seconds += float(metadata["nh.duration_s"].value)
    kpis.tokens = tokens if seen_tokens else None
    kpis.generation_s = round(seconds, 1) if records.materialized else None
    return kpis


def _note(spec: PromptSpec, text: str, links: DaySources) -> Note:
    recorded = read_sources(text)
    body = links.markdown(strip_front_matter(text))
    if recorded is not None:  # the final URLs its searches led to, as the step resolved them
        sources = [Source(title=s.title, url=s.url, domain=s.domain) for s in recorded.grounded]
    else:
        sources = extract_sources(body)
    return Note(prompt_id=spec.prompt_id, title=spec.title, category=spec.category, markdown=body, sources=sources)


def _dashboard(path: Path, links: DaySources) -> str | None:
    markup = path.read_text(encoding="utf-8", errors="replace")
    match = _MAIN.search(markup) or _BODY.search(markup)
    cleaned, _removed = sanitize_html(match.group("inner") if match else markup)
    return links.markup(cleaned) if cleaned.strip() else None


def _payload_links(payload: PublishedPayload, links: DaySources) -> PublishedPayload:
    return payload.model_copy(
        update={
            "sections": [s.model_copy(update={"markdown": links.markdown(s.markdown)}) for s in payload.sections],
            "raw_markdown": links.markdown(payload.raw_markdown),
            "summary": links.markdown(payload.summary),
            **{
                name: [links.markdown(item) for item in getattr(payload, name)]
                for name in ("notable_developments", "strategic_implications", "recommendations")
            },
        }
    )


def build_day(
    instance: dg.DagsterInstance, roles: SiteRoles, data_root: Path, day: str, records: _DayRecords | None
) -> DayInput:
    """The day's input from its files on disk; raises DayInputError for an unusable payload."""
    payload = parse_payload(data_root / roles.payload.output_path(day))
    missing: list[str] = []

    def present(spec: PromptSpec | None) -> Path | None:
        if spec is None:
            return None
        path = data_root / spec.output_path(day)
        if path.is_file():
            return path
        missing.append(spec.prompt_id)
        return None

    read = lambda path: path.read_text(encoding="utf-8", errors="replace")  # noqa: E731
    note_texts = [(spec, read(path)) for spec in roles.notes if (path := present(spec))]
    analysis_texts = [(spec, read(path)) for spec in roles.analyses if (path := present(spec))]
    links = day_sources(read_sources(text) for _, text in note_texts + analysis_texts)
    notes = [_note(spec, text, links) for spec, text in note_texts]
    analyses = [_note(spec, text, links) for spec, text in analysis_texts]
    dashboard_path = present(roles.dashboard)
    payload = _payload_links(payload, links)
    dashboard_html = _dashboard(dashboard_path, links) if dashboard_path else None
    kpis = _kpis(instance, roles, records, len(notes))
    kpis.sources_grounded, kpis.sources_unverified, kpis.sources_dead = links.counts()
    # Not counted as missing: the brief opens the day when it exists, and the day is whole without it.
    brief_path = data_root / roles.brief.output_path(day) if roles.brief else None
    return DayInput(
        date=day,
        payload=payload,
        notes=notes,
        analyses=analyses,
        dashboard_html=dashboard_html,
        brief=brief_sentences(brief_path.read_text(encoding="utf-8", errors="replace"))
        if brief_path and brief_path.is_file()
        else [],
        kpis=kpis,
        missing_inputs=missing,
    )


def collect_days(*, instance: dg.DagsterInstance, roles: SiteRoles, data_root: Path, src_dir: Path) -> CollectResult:
    """Refresh ``src_dir/DATE.json`` for every day whose record or payload is new."""
    state_path = src_dir / STATE_FILE
    try:
        seen: dict[str, str] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except ValueError:
        seen = {}  # a damaged state only costs one full collection
    kept = day_files(src_dir)
    records = _records_by_day(instance, roles)
    payload_dir = (data_root / roles.payload.output_path("2000-01-01")).parent
    on_disk = {p.stem for p in payload_dir.glob("*.json") if DAY_FILE.match(p.name)} if payload_dir.is_dir() else set()
    candidates = {d for d, r in records.items() if seen.get(d) != r.signature()} | (on_disk - set(kept))
    result = CollectResult()
    for day in sorted(candidates):
        if not (data_root / roles.payload.output_path(day)).is_file():
            continue  # not exported yet, or removed by retention: the kept copy (if any) stands
        try:
            day_input = build_day(instance, roles, data_root, day, records.get(day))
        except DayInputError as exc:
            result.problems.append(str(exc))
            continue
        if write_day(src_dir, day_input):
            result.updated.append(day)
        if day in records:
            seen[day] = records[day].signature()
    result.unchanged = len(day_files(src_dir)) - len(result.updated)
    write_atomic(state_path, (json.dumps(seen, sort_keys=True, indent=0) + "\n").encode())
    return result
