"""The parity report: does a new data tree hold every artifact of the legacy one?

``python -m nh_assets.operations.parity LEGACY_ROOT NEW_ROOT [--date D]`` checks that every
artifact of the legacy tree exists in the new one with the same sha256 (presence only with
``--presence-only``: regenerated LLM text never matches byte for byte). Artifacts only in the
new tree are listed but do not fail it: the new pipeline may have run more days. Exit 0 on
parity, 1 otherwise, 2 on bad arguments. Both trees are read through ``data_tree.scan_tree``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Iterable, Sequence

from nh_assets.artifacts import sha256_file
from nh_assets.operations.data_tree import parse_day, scan_tree
from nh_assets.registry import Registry, RegistryError, load_registry
from nh_assets.settings import registry_path_from_env

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
        prog="python -m nh_assets.operations.parity",
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
