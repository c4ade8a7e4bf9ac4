"""Reading a NeuroHelix data tree through the registry, and comparing two trees (parity report).

The registry's ``expected_outputs`` templates are the only description of the layout: a file is
prompt P's artifact for day D exactly when its path is P's template with ``{date}`` = D. Only
the folders those templates live in (``outputs/daily``, ``reports``, ``publishing``, …) are
read, and symbolic links are never followed. Everything else found there is classified rather
than guessed at: a date-shaped name that is no calendar day (``2025-13-45``) is *malformed*,
any other file no template explains is *unknown*. Retention, the history import and the parity
report all see a tree through ``scan_tree``, so they agree on what belongs to which day.

The parity report (``python -m nh_assets.parity LEGACY_ROOT NEW_ROOT [--date D]``) checks that
every artifact of the legacy tree exists in the new one with the same sha256 (presence only
with ``--presence-only``: regenerated LLM text never matches byte for byte). Artifacts only in
the new tree are listed but do not fail it: the new pipeline may have run more days. Exit 0 on
parity, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from nh_assets.artifacts import sha256_file
from nh_assets.registry import Registry, RegistryError, load_registry, registry_path_from_env

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


class Status(str, Enum):
    SAME = "same"
    DIFFERS = "differs"
    MISSING_IN_NEW = "missing in new"
    ONLY_IN_NEW = "only in new"
    UNREADABLE = "unreadable"


FAILING = {Status.DIFFERS, Status.MISSING_IN_NEW, Status.UNREADABLE}


@dataclass(frozen=True)
class ParityRow:
    status: Status
    day: date
    prompt_id: str
    relative: str
    legacy_sha256: str | None
    new_sha256: str | None


@dataclass
class ParityReport:
    legacy_root: Path
    new_root: Path
    rows: list[ParityRow]
    presence_only: bool

    @property
    def ok(self) -> bool:
        return not any(row.status in FAILING for row in self.rows)

    def counts(self) -> Counter[Status]:
        return Counter(row.status for row in self.rows)

    def summary(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{counts.get(s, 0)} {s.value}" for s in Status)
        mode = " (presence only)" if self.presence_only else ""
        return f"parity{mode}: {parts} — {'OK' if self.ok else 'FAIL'}"

    def table(self, *, only_problems: bool = False) -> str:
        rows = [r for r in self.rows if not only_problems or r.status is not Status.SAME]
        header = ("STATUS", "DATE", "PROMPT", "PATH", "LEGACY", "NEW")
        cells = [
            (r.status.value, r.day.isoformat(), r.prompt_id, r.relative, _short(r.legacy_sha256), _short(r.new_sha256))
            for r in rows
        ]
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *cells])

    def markdown(self, *, limit: int = 50) -> str:
        problems = [r for r in self.rows if r.status is not Status.SAME]
        lines = [self.summary(), "", "| status | date | prompt | path |", "|---|---|---|---|"]
        lines += [f"| {r.status.value} | {r.day} | {r.prompt_id} | `{r.relative}` |" for r in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"| … | | | {len(problems) - limit} more |")
        if not problems:
            lines.append("| same | | | every artifact matches |")
        return "\n".join(lines)


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "-"


def _sha(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def compare_trees(
    legacy_root: Path,
    new_root: Path,
    registry: Registry,
    *,
    days: Iterable[date] | None = None,
    start: date | None = None,
    end: date | None = None,
    presence_only: bool = False,
) -> ParityReport:
    """Compare the artifacts of ``days`` (or of ``start``..``end``, inclusive; default all)."""
    wanted = set(days) if days is not None else None
    legacy = scan_tree(legacy_root, registry).artifacts
    new = scan_tree(new_root, registry).artifacts
    rows = []
    for key in sorted(set(legacy) | set(new), key=lambda k: (k[1], k[0])):
        if (wanted is not None and key[1] not in wanted) or (start and key[1] < start) or (end and key[1] > end):
            continue
        old, cur = legacy.get(key), new.get(key)
        if old is None:
            assert cur is not None
            rows.append(ParityRow(Status.ONLY_IN_NEW, key[1], key[0], cur.relative, None, None))
            continue
        if cur is None:
            rows.append(ParityRow(Status.MISSING_IN_NEW, key[1], key[0], old.relative, None, None))
            continue
        if presence_only:
            rows.append(ParityRow(Status.SAME, key[1], key[0], old.relative, None, None))
            continue
        old_sha, new_sha = _sha(old.path), _sha(cur.path)
        if old_sha is None or new_sha is None:
            status = Status.UNREADABLE
        else:
            status = Status.SAME if old_sha == new_sha else Status.DIFFERS
        rows.append(ParityRow(status, key[1], key[0], old.relative, old_sha, new_sha))
    return ParityReport(legacy_root, new_root, rows, presence_only)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nh_assets.parity",
        description="Compare a legacy NeuroHelix tree with this project's outputs (presence and sha256).",
    )
    parser.add_argument("legacy_root", type=Path)
    parser.add_argument("new_root", type=Path)
    parser.add_argument(
        "--date", action="append", dest="dates", metavar="YYYY-MM-DD", help="only this day (repeatable)"
    )
    parser.add_argument("--presence-only", action="store_true", help="compare presence, not content")
    parser.add_argument("--all", action="store_true", help="list matching artifacts too, not only differences")
    parser.add_argument("--registry", type=Path, help="registry TSV (default: $NH_REGISTRY or the shipped one)")
    args = parser.parse_args(argv)
    for root in (args.legacy_root, args.new_root):
        if not root.is_dir():
            print(f"parity: {root} is not a directory", file=sys.stderr)
            return 2
    days = None
    if args.dates:
        days = [parse_day(d) for d in args.dates]
        if None in days:
            print("parity: --date takes YYYY-MM-DD", file=sys.stderr)
            return 2
    try:
        registry = load_registry(args.registry or registry_path_from_env())
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = compare_trees(args.legacy_root, args.new_root, registry, days=days, presence_only=args.presence_only)
    print(report.table(only_problems=not args.all))
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
