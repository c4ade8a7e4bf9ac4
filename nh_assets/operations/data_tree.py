"""Reading a NeuroHelix data tree through the registry: which file is which prompt's artifact, which day.

The registry's ``expected_outputs`` templates are the only description of the layout: a file is
prompt P's artifact for day D exactly when its path is P's template with ``{date}`` = D. Only
the folders those templates live in (``outputs/daily``, ``reports``, ``publishing``, …) are
read, and symbolic links are never followed. Everything else found there is classified rather
than guessed at: a date-shaped name that is no calendar day (``2025-13-45``) is *malformed*,
any other file no template explains is *unknown*. Retention, the history import and the parity
report all see a tree through ``scan_tree``, so they agree on what belongs to which day.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Sequence

import dagster as dg

from nh_assets.registry import Registry

# Metadata lists of files are cut here: the UI shows them, the full list is in the logs.
LIST_LIMIT = 100
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# write_atomic's temporary files: ".<name>.<random>.partial" beside the artifact.
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[^./]+\.partial")


@dataclass(frozen=True)
class Artifact:
    prompt_id: str
    day: date
    relative: str  # POSIX path relative to the tree's root
    path: Path


@dataclass(frozen=True)
class _Template:
    prompt_id: str
    file_re: re.Pattern[str]
    day_dir_re: re.Pattern[str] | None  # when {date} names a directory (outputs/daily/{date}/…)
    base: PurePosixPath  # the folders before the first segment holding {date}


def _segment_re(segment: str) -> str:
    return re.escape(segment).replace(re.escape("{date}"), "(?P<date>[^/]+)")


def _templates(registry: Registry) -> list[_Template]:
    templates = []
    for spec in registry.prompts:
        parts = PurePosixPath(spec.expected_outputs).parts
        first = next(i for i, part in enumerate(parts) if "{date}" in part)
        file_re = re.compile("/".join(re.escape(p) if i < first else _segment_re(p) for i, p in enumerate(parts)))
        day_dir_re = None
        if first < len(parts) - 1:
            day_dir_re = re.compile("/".join([*(re.escape(p) for p in parts[:first]), _segment_re(parts[first])]))
        templates.append(_Template(spec.prompt_id, file_re, day_dir_re, PurePosixPath(*parts[:first])))
    return templates


def parse_day(token: str) -> date | None:
    if not _DATE_SHAPE.fullmatch(token):
        return None
    try:
        return date.fromisoformat(token)
    except ValueError:
        return None


@dataclass
class TreeScan:
    """What a data tree holds, as the registry sees it."""

    root: Path
    artifacts: dict[tuple[str, date], Artifact] = field(default_factory=dict)
    day_dirs: dict[date, list[Path]] = field(default_factory=dict)
    partials: list[Artifact] = field(default_factory=list)  # leftover temp files of an artifact
    malformed: list[str] = field(default_factory=list)  # date-shaped names that are no real day
    unknown: list[str] = field(default_factory=list)  # files no template explains (incl. symlinks)

    def days(self) -> set[date]:
        return {day for _, day in self.artifacts} | set(self.day_dirs)


def _match(templates: Sequence[_Template], relative: str) -> tuple[_Template, date] | str | None:
    """(template, day) for an artifact; the date token if only a malformed date matches; else None."""
    malformed_token = None
    for template in templates:
        found = template.file_re.fullmatch(relative)
        if found is None:
            continue
        day = parse_day(found.group("date"))
        if day is not None:
            return template, day
        if _DATE_SHAPE.fullmatch(found.group("date")):
            malformed_token = found.group("date")
    return malformed_token


def scan_tree(root: Path, registry: Registry) -> TreeScan:
    """Classify every file under the layout's folders of ``root`` (missing folders are empty)."""
    templates = _templates(registry)
    scan = TreeScan(root=root)
    bases = sorted({t.base for t in templates}, key=lambda p: len(p.parts))
    # A base inside another base is walked as part of it.
    bases = [b for b in bases if not any(o != b and b.is_relative_to(o) for o in bases)]
    malformed_dirs: list[str] = []
    for base in bases:
        top = root / base
        if not top.is_dir() or top.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
            for name in list(dirnames):
                rel = str(rel_dir / name)
                full = Path(dirpath) / name
                if full.is_symlink():
                    scan.unknown.append(rel)
                    dirnames.remove(name)
                    continue
                for template in templates:
                    found = template.day_dir_re.fullmatch(rel) if template.day_dir_re else None
                    if not found:
                        continue
                    day = parse_day(found.group("date"))
                    if day is not None:
                        if full not in scan.day_dirs.setdefault(day, []):
                            scan.day_dirs[day].append(full)
                    elif _DATE_SHAPE.fullmatch(found.group("date")) and rel not in malformed_dirs:
                        malformed_dirs.append(rel)
                    break
            for name in sorted(filenames):
                rel = str(rel_dir / name)
                full = Path(dirpath) / name
                if any(rel.startswith(d + "/") for d in malformed_dirs):
                    continue  # reported once, as its directory
                if full.is_symlink():
                    scan.unknown.append(rel)
                    continue
                matched = _match(templates, rel)
                if isinstance(matched, tuple):
                    template, day = matched
                    scan.artifacts[(template.prompt_id, day)] = Artifact(template.prompt_id, day, rel, full)
                    continue
                if isinstance(matched, str):
                    scan.malformed.append(rel)
                    continue
                partial = _PARTIAL.fullmatch(name)
                if partial:
                    target = _match(templates, str(rel_dir / partial.group("name")))
                    if isinstance(target, tuple):
                        scan.partials.append(Artifact(target[0].prompt_id, target[1], rel, full))
                        continue
                scan.unknown.append(rel)
    scan.malformed = sorted(malformed_dirs + scan.malformed)
    scan.unknown.sort()
    return scan


def listing(items: list[str]) -> dg.MetadataValue:
    """A list of paths as metadata, cut at ``LIST_LIMIT`` with a count of the rest."""
    shown = items[:LIST_LIMIT]
    if len(items) > LIST_LIMIT:
        shown = [*shown, f"… {len(items) - LIST_LIMIT} more"]
    return dg.MetadataValue.json(shown)
