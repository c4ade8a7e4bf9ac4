"""What the site knows about one day, and where the site keeps it (``site_src/DATE.json``).

A day is its payload (the report split into sections, tags, categories), the research notes and
the two analyses the report does not read, the sanitized dashboard, the KPIs taken from the
materializations' metadata, and the inputs that were missing when it was collected. The site
keeps this small document itself because retention deletes the raw artifacts: the published
history must never shrink when ``outputs/`` does.

The payload is read leniently on purpose (unknown keys ignored, ``missing_inputs`` optional): a
newer exporter may add fields, and the site must keep publishing what it understands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nh_assets.artifacts import write_atomic
from nh_assets.formats.site_payload import SitePayload

SCHEMA_VERSION = 1
DAY_FILE = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})\.json$")


class DayInputError(ValueError):
    """A day's input cannot be used: one line naming the file, what is wrong and the fix."""


class PublishedPayload(SitePayload):
    """The exporter's payload as the site reads it: same fields, plus optional ones."""

    model_config = ConfigDict(extra="ignore")

    missing_inputs: list[str] = Field(default_factory=list)

    @field_validator("missing_inputs", mode="before")
    @classmethod
    def _prompt_ids(cls, value: object) -> object:
        """The exporter writes ``{prompt_id, reason}`` objects; the site lists the prompt ids."""
        if isinstance(value, list):
            return [item.get("prompt_id") if isinstance(item, dict) else item for item in value]
        return value


class Source(BaseModel):
    title: str
    url: str
    domain: str = ""


class Note(BaseModel):
    """A research note or an analysis, as markdown, with the sources it links to."""

    prompt_id: str
    title: str
    category: str
    markdown: str
    sources: list[Source] = Field(default_factory=list)


class Kpis(BaseModel):
    """Figures from the day's materializations (None when the instance has none, e.g. imports)."""

    domains: int = 0
    tokens: int | None = None
    prompts_run: int = 0
    prompts_failed: int = 0
    prompts_total: int = 0
    generation_s: float | None = None
    # The day's sources (``source_policy``); None for a day whose notes recorded none.
    sources_grounded: int | None = None
    sources_unverified: int | None = None
    sources_dead: int | None = None


class DayInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    payload: PublishedPayload
    notes: list[Note] = Field(default_factory=list)
    analyses: list[Note] = Field(default_factory=list)
    dashboard_html: str | None = None
    brief: list[str] = Field(default_factory=list)  # the morning brief's three sentences, when it succeeded
    kpis: Kpis = Field(default_factory=Kpis)
    missing_inputs: list[str] = Field(default_factory=list)

    def all_missing(self) -> list[str]:
        return sorted(set(self.missing_inputs) | set(self.payload.missing_inputs))

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(), ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode()


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "document"
    return f"{where}: {err['msg']}"


def parse_payload(path: Path) -> PublishedPayload:
    try:
        return PublishedPayload.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise DayInputError(
            f"{path}: not a site payload ({first_error(exc)}) — materialize site_payload_exporter for that day again"
        ) from None


def read_day(path: Path) -> DayInput:
    try:
        return DayInput.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise DayInputError(
            f"{path}: not a site day input ({first_error(exc)}) — delete it and materialize the site asset again"
        ) from None


def write_day(src_dir: Path, day: DayInput) -> bool:
    """Write ``src_dir/DATE.json`` if its bytes changed; True when it did."""
    path = src_dir / f"{day.date}.json"
    data = day.to_bytes()
    if path.is_file() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def day_files(src_dir: Path) -> dict[str, Path]:
    """Date → file of every day the site keeps (other names are ignored)."""
    if not src_dir.is_dir():
        return {}
    found = {}
    for path in src_dir.iterdir():
        match = DAY_FILE.match(path.name)
        if match and path.is_file():
            found[match.group("day")] = path
    return dict(sorted(found.items()))
