"""What every ``nh`` command needs to know about the project: settings, registry, asset graph,
instance, and the meaning of its DATE and ``--select`` arguments.

The asset graph is the code location Dagster itself loads (``nh_assets.definitions.defs``, built
from the same environment), so a selection resolves to the same assets and each asset's
``code_version`` is the one the next materialization will record. Settings and registry are
validated first, because importing the definitions raises on either without saying which
command fixes it. Nothing here runs a step or calls a model.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from nh_assets.cli.exit_codes import INVALID, UNAVAILABLE, USAGE, NhError
from nh_assets.registry import Registry, RegistryError, load_registry
from nh_assets.settings import registry_path_from_env
from nh_assets.settings import Settings, SettingsError, load_settings

MAX_DAYS = 366
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Project:
    settings: Settings
    registry: Registry
    graph: object  # dagster's AssetGraph of the code location
    code_versions: dict[str, str]
    job_name: str

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.settings.timezone)).date()


def load_project_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise NhError(f"{exc} (see `nh config`)", INVALID) from None


def load_project() -> Project:
    settings = load_project_settings()
    try:
        registry = load_registry(registry_path_from_env())
    except RegistryError as exc:
        problems = str(exc).splitlines()
        more = f" (+{len(problems) - 1} more; `nh validate` lists them)" if len(problems) > 1 else ""
        raise NhError(f"invalid registry: {problems[0]}{more}", INVALID) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nh_assets.definitions import DAILY_JOB_NAME, defs

            graph = defs.resolve_asset_graph()
    except Exception as exc:  # noqa: BLE001 - whatever stops the code location from loading, in one line
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NhError(f"the nh_assets code location does not load: {reason}", INVALID) from None
    versions = {spec.prompt_id: graph.get(dg.AssetKey(spec.prompt_id)).code_version or "" for spec in registry.prompts}
    return Project(settings, registry, graph, versions, DAILY_JOB_NAME)


def open_instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME (``environment.apply`` gave it dev.sh's default when unset)."""
    try:
        return dg.DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001 - any failure to open storage is one line for the operator
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NhError(
            f"cannot open the Dagster instance at $DAGSTER_HOME ({reason}) — set DAGSTER_HOME to the directory "
            "holding dagster.yaml (scripts/dev.sh uses dagster_home/)",
            UNAVAILABLE,
        ) from None


def parse_day(text: str, project: Project) -> date:
    word = text.strip().lower()
    if word == "today":
        day = project.today()
    elif word == "yesterday":
        day = project.today() - timedelta(days=1)
    elif _DAY.fullmatch(word):
        try:
            day = date.fromisoformat(word)
        except ValueError:
            raise NhError(f"{text!r} is not a calendar day — write YYYY-MM-DD", USAGE) from None
    else:
        raise NhError(f"{text!r} is not a day — write YYYY-MM-DD, today or yesterday", USAGE)
    first, last = project.settings.partition_start, project.today()
    if not first <= day <= last:
        raise NhError(
            f"{day} has no partition: days run from NH_PARTITION_START ({first}) "
            f"to today ({last}, {project.settings.timezone})",
            USAGE,
        )
    return day


def parse_days(text: str, project: Project) -> list[date]:
    """``DATE`` or ``START..END`` (inclusive) as the list of days."""
    if ".." not in text:
        return [parse_day(text, project)]
    start_text, end_text = text.split("..", 1)
    start, end = parse_day(start_text, project), parse_day(end_text, project)
    if end < start:
        raise NhError(f"{text}: the range ends before it starts — write START..END with START <= END", USAGE)
    if (end - start).days + 1 > MAX_DAYS:
        raise NhError(f"{text}: more than {MAX_DAYS} days — split the range", USAGE)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def resolve_selection(project: Project, select: str | None) -> list[str]:
    """Prompt ids chosen by ``--select`` (Dagster's asset selection syntax: ``daily_aggregator``,
    ``key:concept_synthesizer+``, ``group:search``), in the registry's dependency order. Only prompt
    assets run for a day; anything else a selection reaches (``site_deployment``) is left to its
    own automation."""
    order = [spec.prompt_id for spec in project.registry.topological_order()]
    if not select:
        return order
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            keys = dg.AssetSelection.from_string(select).resolve(project.graph)
    except Exception as exc:  # noqa: BLE001 - Dagster raises several types for a bad selection
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise NhError(f"--select {select!r}: {reason} — see `nh plan today` for the asset names", USAGE) from None
    chosen = {key.to_user_string() for key in keys}
    picked = [prompt for prompt in order if prompt in chosen]
    if not picked:
        raise NhError(f"--select {select!r} names no prompt asset — see `nh plan today` for the asset names", USAGE)
    return picked
