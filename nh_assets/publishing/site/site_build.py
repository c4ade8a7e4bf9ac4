"""Incremental, atomic site builds: render what changed into a new tree, then swap one link.

``NH_SITE_DIR`` (default ``NH_DATA_ROOT/site``) is a symbolic link to the current build under
``.site.builds/``. A build starts a new tree as hard links of the current one (cheap: no bytes
copied), re-renders only the pages whose hash changed (see ``pages``), replacing a file rather
than writing through a link so the live tree is never touched, re-indexes the search, and then
replaces the link in one ``rename``. Readers and a deploy in progress see the old tree or the new
one, never a mix; the previous tree is kept one more build for them. A failed build leaves the
published link as it was.

The manifest (``.site.builds/manifest.json``) remembers, per day, the input file's stat and hash
and the summary that listings show, and per page the hash it was rendered from, so an unchanged
day costs one ``stat`` and an unchanged page nothing. A manifest that does not match the live
tree, or another ``SITE_VERSION``, means a full build.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from nh_assets.artifacts import write_atomic

from .day_input import DayInputError, day_files, read_day
from .pages import SITE_VERSION, DaySummary, Page, day_pages, index_pages
from .search_index import SearchIndex, build_search_index

SEARCH_DIR = "pagefind"
KEEP_BUILDS = 2


class SiteBuildError(Exception):
    """The site cannot be built: one line with the cause and the fix."""


@dataclass(frozen=True)
class SitePaths:
    site_dir: Path  # the published link
    src_dir: Path  # the site's own copy of each day

    @property
    def builds_dir(self) -> Path:
        return self.site_dir.parent / f".{self.site_dir.name}.builds"

    @property
    def manifest_path(self) -> Path:
        return self.builds_dir / "manifest.json"


@dataclass
class BuildReport:
    build_dir: Path
    full: bool
    days: int
    newest_day: str | None
    changed_days: list[str] = field(default_factory=list)
    removed_days: list[str] = field(default_factory=list)
    skipped_days: list[str] = field(default_factory=list)  # unreadable inputs, one line each
    pages_rendered: int = 0
    pages_kept: int = 0
    files_removed: int = 0
    file_count: int = 0
    total_bytes: int = 0
    search: SearchIndex | None = None
    duration_s: float = 0.0


def _load_manifest(paths: SitePaths) -> dict:
    try:
        manifest = json.loads(paths.manifest_path.read_text())
    except (OSError, ValueError):
        return {}
    current = paths.site_dir.resolve() if paths.site_dir.is_symlink() else None
    usable = (
        manifest.get("version") == SITE_VERSION
        and current is not None
        and current.is_dir()
        and current.name == manifest.get("build")
    )
    return manifest if usable else {}


def _link_tree(source: Path, target: Path) -> None:
    """``target`` as hard links of ``source``, without the search index (rebuilt every time)."""
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d != SEARCH_DIR]
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            os.link(Path(dirpath) / name, target / rel / name)


def _replace(path: Path, data: bytes) -> None:
    # Unlink first: the file may be a hard link shared with the live tree.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _read_days(paths: SitePaths, known: dict, report: BuildReport) -> tuple[dict[str, dict], dict]:
    """Per day: stat, sha and summary, re-reading only files whose stat changed."""
    days: dict[str, dict] = {}
    loaded = {}
    for day, path in day_files(paths.src_dir).items():
        st = path.stat()
        stat = [st.st_mtime_ns, st.st_size]
        previous = known.get(day)
        if previous and previous.get("stat") == stat:
            days[day] = previous
            continue
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()[:24]
        if previous and previous.get("sha") == sha:
            days[day] = {**previous, "stat": stat}
            continue
        try:
            day_input = read_day(path)
        except DayInputError as exc:
            report.skipped_days.append(str(exc))
            if previous:  # keep publishing the last good version of that day
                days[day] = previous
            continue
        loaded[day] = day_input
        days[day] = {"stat": stat, "sha": sha, "summary": asdict(DaySummary.of(day_input))}
        report.changed_days.append(day)
    return days, loaded


def _summary(entry: dict) -> DaySummary:
    s = entry["summary"]
    return DaySummary(
        s["date"], s["title"], s["summary"], tuple(s["tags"]), tuple(s["categories"]), s["demo"], tuple(s["brief"])
    )


def _tree_size(root: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            count += 1
            size += (Path(dirpath) / name).stat().st_size
    return count, size


def _swap_link(paths: SitePaths, build_dir: Path) -> None:
    tmp = paths.site_dir.parent / f".{paths.site_dir.name}.link-{build_dir.name}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(build_dir, paths.site_dir.parent), tmp)
    os.replace(tmp, paths.site_dir)


def _prune(paths: SitePaths, keep: set[str]) -> None:
    builds = sorted(p for p in paths.builds_dir.iterdir() if p.is_dir() and p.name.startswith("b-"))
    for old in builds[:-KEEP_BUILDS]:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def build_site(paths: SitePaths, *, site_url: str, pagefind_cli: str, full: bool = False) -> BuildReport:
    """Build from every day in ``paths.src_dir`` and publish it at ``paths.site_dir``."""
    site = paths.site_dir
    if site.exists() and not site.is_symlink():
        raise SiteBuildError(
            f"{site} is a real directory, but the site is published there as a link to its latest build — "
            "move that directory away, or set NH_SITE_DIR to a path that does not exist yet (default NH_DATA_ROOT/site)"
        )
    paths.builds_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(paths.builds_dir / ".lock")):
        return _build_locked(paths, site_url=site_url, pagefind_cli=pagefind_cli, full=full)


def _build_locked(paths: SitePaths, *, site_url: str, pagefind_cli: str, full: bool) -> BuildReport:
    started = time.monotonic()
    manifest = {} if full else _load_manifest(paths)
    build_dir = paths.builds_dir / f"b-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    report = BuildReport(build_dir=build_dir, full=not manifest, days=0, newest_day=None)
    try:
        if manifest:
            _link_tree(paths.site_dir.resolve(), build_dir)
        else:
            build_dir.mkdir(parents=True)
        days, loaded = _read_days(paths, manifest.get("days", {}), report)
        report.removed_days = sorted(set(manifest.get("days", {})) - set(days))
        ordered = sorted(days)
        report.days, report.newest_day = len(ordered), (ordered[-1] if ordered else None)

        wanted: list[Page] = []
        for i, day in enumerate(ordered):
            prev_day, next_day = (ordered[i - 1] if i else None), (ordered[i + 1] if i + 1 < len(ordered) else None)

            def load(day: str = day):
                if day not in loaded:
                    loaded[day] = read_day(paths.src_dir / f"{day}.json")
                return loaded[day]

            wanted += day_pages(days[day]["sha"], load, day, prev_day, next_day)
        wanted += index_pages([_summary(days[d]) for d in reversed(ordered)], site_url=site_url)

        old_pages: dict[str, str] = manifest.get("pages", {})
        for page in wanted:
            target = build_dir / page.path
            if old_pages.get(page.path) == page.hash and target.is_file():
                report.pages_kept += 1
                continue
            _replace(target, page.render())
            report.pages_rendered += 1
        for stale in set(old_pages) - {p.path for p in wanted}:
            target = build_dir / stale
            if target.is_file():
                target.unlink()
                report.files_removed += 1
                _remove_empty_parents(target.parent, build_dir)

        report.search = build_search_index(build_dir, pagefind_cli=pagefind_cli)
        report.file_count, report.total_bytes = _tree_size(build_dir)
        previous = paths.site_dir.resolve().name if paths.site_dir.is_symlink() else None
        _swap_link(paths, build_dir)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    new_manifest = {
        "version": SITE_VERSION,
        "build": build_dir.name,
        "days": days,
        "pages": {p.path: p.hash for p in wanted},
    }
    write_atomic(paths.manifest_path, json.dumps(new_manifest, sort_keys=True).encode())
    _prune(paths, keep={build_dir.name, previous or ""})
    report.duration_s = time.monotonic() - started
    return report


def _remove_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
