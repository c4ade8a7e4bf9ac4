"""Benchmark: one unattended day at free-tier quotas, the code before the unattended work beside today's.

    .venv/bin/python -m benchmarks.unattended [--flash-per-day 20] [--deadline 1200] [--before ad60e36]
    .venv/bin/python -m benchmarks.unattended --rows 2 --flash-per-day 2 --deadline 45   # what the suite runs

A script that prints figures, not a test. On the free tier a day needs more gemini-2.5-flash
requests than its daily quota, and grounding links expire after the day; what matters then is
whether the day still ends, how hard the pipeline keeps asking a spent model, whether someone is
told, and which of the published sources a reader can still open. Both sides run the same day,
one after the other on the same machine:

- **before**: the tree of ``--before`` (``git archive``) imported in its place through
  ``PYTHONPATH`` with this venv, with its own registry, instance file and sensors;
- **after**: this working tree, its registry with a ``fallback_model`` on most flash rows, as an
  operator on the free tier sets it (``nh_assets_tests.support.registry_edit``).

Each side gets its own fake Gemini API from this tree, configured alike (the service is the same
for both): gemini-2.5-flash refuses requests past ``--flash-per-day`` with Google's per-day 429,
other models are free; searches name their sources by grounding redirects that expire; the
model cites a URL no search returned (``inventive_model``). Yesterday is made by the fast fake
CLI; the day itself runs through the real, pinned Gemini CLI with ``dagster asset materialize
--select '*'``, killed at ``--deadline``. Then, as an operator would: the catch-up of what failed
rows held back, the alert sensors against a local webhook, the redirects expire, and the ``site``
asset publishes the day page, whose cited links are checked now.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.machine import DAGSTER, become_subreaper, load_average
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.demo.quota import QuotaCounter
from nh_assets.prompts.sources import UNVERIFIED
from nh_assets.process_stat import process_stat
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.fakes import install_fake
from nh_assets_tests.support.gemini_api_fixtures import gemini_env
from nh_assets_tests.support.inventive_model import InventiveModel
from nh_assets_tests.support.registry_edit import SPENT_MODEL, registry_with_fallbacks
from nh_assets_tests.support.site_links import status_now
from nh_assets_tests.support.webhook import webhook_receiver

GEMINI = REPO_ROOT / "node_modules" / ".bin" / "gemini"
PAGEFIND = REPO_ROOT / "node_modules" / ".bin" / "pagefind"
SIDE_SCRIPT = REPO_ROOT / "benchmarks" / "unattended_side.py"
DAY1, DAY2 = "2026-11-21", "2026-11-22"
INVENTS = ("tech_regulation_pulse", "daily_aggregator")  # a research note and the report cite a made-up URL
_HREF = re.compile(r'<a\b[^>]*\bhref="(https?://[^"]+)"')
_DEAD_MARK = "(source link dead)"


def _tree_of(ref: str, into: Path) -> Path:
    """The files of ``ref`` under ``into``, without a worktree (nothing to clean up in git)."""
    archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"bench: git cannot give the tree of {ref!r} (a shallow clone?): {archive.stderr.decode()[-500:]}")
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def _first_rows(path: Path, rows: int, source: Path | None = None) -> Path:
    """``source`` (default: ``path`` itself) written to ``path`` cut to its comments, header and
    first ``rows`` rows (0: all of them)."""
    lines = (source or path).read_text(encoding="utf-8").splitlines()
    if rows:
        table = [line for line in lines if line.strip() and not line.startswith("#")]
        lines = [line for line in lines if line.startswith("#")] + table[: rows + 1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _reads_other_rows(path: Path) -> bool:
    """Whether any row of the registry at ``path`` depends on another row (yesterday's included)."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    column = rows[0].index("depends_on")
    return any(len(row) > column and row[column].strip() for row in rows[1:])


class Side:
    """One version of the pipeline: its tree, registry, instance and data, all under ``base``."""

    def __init__(self, name: str, tree: Path, registry: Path, base: Path, *, cwd: Path):
        self.name, self.tree, self.base, self.cwd = name, tree, base, cwd
        self.home = base / "dagster_home"
        self.home.mkdir(parents=True)
        (self.home / "dagster.yaml").write_text((tree / "dagster_home" / "dagster.yaml").read_text())
        self.data = base / "data"
        self.reads_other_rows = _reads_other_rows(registry)
        self.settings = {
            "DAGSTER_HOME": str(self.home), "NH_DATA_ROOT": str(self.data), "NH_REGISTRY": str(registry),
            "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC", "NH_DEMO": "0", "NH_PAGEFIND_CLI": str(PAGEFIND),
            "PYTHONPATH": str(tree),  # first on sys.path: ``import nh_assets`` is this side's code
            "TMPDIR": tempfile.mkdtemp(prefix="nh-"),  # forkserver socket paths must stay short
        }

    def env(self, api: FakeGeminiAPI, cli: Path, home: str, **extra: str) -> dict[str, str]:
        env = gemini_env(self.base, api.base_url, name=home)
        return {**env, **self.settings, "NH_GEMINI_CLI": str(cli), **extra}

    def run(self, env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """``args`` in this side's code; exit 124 when it outran ``timeout`` (what it left is ended later)."""
        try:
            return subprocess.run(list(args), env=env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as late:
            return subprocess.CompletedProcess(list(args), 124, str(late.stdout or ""), str(late.stderr or ""))

    def side_script(self, env: dict[str, str], *args: str) -> dict:
        done = self.run(env, sys.executable, str(SIDE_SCRIPT), *args)
        if done.returncode != 0:
            raise SystemExit(f"bench: {self.name}: unattended_side {args[0]} failed:\n{done.stderr[-3000:]}")
        found = json.loads(done.stdout.strip().splitlines()[-1])
        if not found["nh_assets"].startswith(str(self.tree)):
            raise SystemExit(f"bench: {self.name} imported {found['nh_assets']}, not its own tree {self.tree}")
        return found


def _materialize(selection: str, *partition: str) -> list[str]:
    return [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", selection, *partition]


def _day_one(side: Side) -> None:
    """Yesterday with the fast fake CLI (from the side's own tree), so the day has windows to carry."""
    with FakeGeminiAPI() as api:
        cli = install_fake(side.base / "fake-cli" / "gemini", root=side.tree)
        env = side.env(api, cli, "home-yesterday", NH_GEMINI_API_URL=api.base_url, NH_GEMINI_TRANSPORT="oneshot")
        done = side.run(env, DAGSTER, "job", "execute", "-m", "nh_assets", "-j", "neurohelix_daily",
                        "--tags", json.dumps({"dagster/partition": DAY1}))
    if done.returncode != 0:
        raise SystemExit(f"bench: {side.name}: yesterday failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _descendants() -> list[int]:
    """Every live process below this one (orphans included: this process is a child subreaper)."""
    parents = {}
    for entry in os.listdir("/proc"):
        stat = process_stat(int(entry)) if entry.isdigit() else None
        if stat is not None:
            parents[int(entry)] = stat.parent
    found, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid]
        found += children
        frontier += children
    return found


def _end_leftovers() -> None:
    """Stop what a killed day left behind (steps, CLIs, a warm CLI service): all of it started here."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _descendants():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _descendants() and time.monotonic() < deadline:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            time.sleep(0.2)


def _day_two(side: Side, env: dict[str, str], deadline_s: float) -> tuple[float, bool, int]:
    """The day through the real CLI: (wall seconds, finished before the deadline, exit code)."""
    started = time.monotonic()
    with open(side.base / "day.log", "wb") as log:
        process = subprocess.Popen(
            _materialize("*", "--partition", DAY2), env=env, cwd=side.cwd, start_new_session=True,
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            code = process.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _end_leftovers()
            return time.monotonic() - started, False, process.returncode
    return time.monotonic() - started, True, code


def _cited_links(page: str, web: str) -> dict[str, int]:
    """Each citation on the day page, counted where a reader meets it: a link to the fake's web
    (a search's article or grounding redirect) that answers 200 now is resolved, any other answer
    dead; a link no search returned, or a citation our code marked so, is unverified; a citation
    marked dead (its link removed) is dead."""
    counts = {"resolved": 0, "unverified": page.count(UNVERIFIED.strip("*")), "dead": page.count(_DEAD_MARK)}
    for url in _HREF.findall(page):
        if not url.startswith(web):
            counts["unverified"] += 1
        else:
            counts["resolved" if status_now(url) == 200 else "dead"] += 1
    return counts


def _after_the_first_429(api: FakeGeminiAPI) -> int | None:
    """Generation requests that reached the spent model after its first per-day 429 (None: no 429)."""
    on_spent = [r for r in api.requests if r["model"] == SPENT_MODEL and r["kind"] != "countTokens"]
    first = next((i for i, r in enumerate(on_spent) if r["status"] == 429), None)
    return None if first is None else len(on_spent) - first - 1


def run_side(side: Side, flash_per_day: int, deadline_s: float, publish: bool) -> dict:
    if side.reads_other_rows:  # a registry cut to research rows reads no yesterday
        _day_one(side)
    api = InventiveModel(
        invents_for=INVENTS, quotas=QuotaCounter(per_day={SPENT_MODEL: flash_per_day}), log_path=side.base / "api.jsonl"
    ).start()
    try:
        env = side.env(api, GEMINI, "home")
        pools = side.run(env, sys.executable, "-m", "nh_assets.pools", "apply")  # as scripts/dev.sh does
        if pools.returncode != 0:
            raise SystemExit(f"bench: {side.name}: pools apply failed:\n{pools.stderr[-2000:]}")
        load = load_average()
        wall, finished, code = _day_two(side, env, deadline_s)
        figures = {"load": load, "wall_s": wall, "finished": finished, "exit": code, "catch_up": []}
        if finished and code != 0:  # failed rows held something back: the catch-up builds it
            figures["catch_up"] = side.side_script(env, "catch-up", DAY2)["held_back"]
            if figures["catch_up"]:
                started = time.monotonic()
                done = side.run(env, *_materialize(",".join(figures["catch_up"]), "--partition", DAY2), timeout=deadline_s)
                figures["catch_up_s"], figures["catch_up_exit"] = time.monotonic() - started, done.returncode
        with webhook_receiver() as (url, posts):
            found = side.side_script(env, "alerts", DAY2, url)
        figures.update(alerts=len(posts), failed_runs=found["failed_runs"], service_sensor=found["service_sensor"])
        figures["spent_requests"] = _after_the_first_429(api)
        figures["report"] = (side.data / f"reports/daily_report_{DAY2}.md").is_file()
        api.web.expire_redirects()
        figures["links"] = figures["site_exit"] = None
        if publish:  # a registry cut to a few rows has no site asset
            site = side.run(env, *_materialize("site"), timeout=900)
            page = side.data / "site" / "reports" / DAY2 / "index.html"
            figures["site_exit"] = site.returncode
            figures["links"] = _cited_links(page.read_text(), f"{api.base_url}/") if page.is_file() else None
    finally:
        api.stop()
        _end_leftovers()
    return figures


def _cell(r: dict, key: str, deadline_s: float) -> str:
    if key == "load":
        return r["load"].removeprefix("load ")
    if key == "wall_s":
        if not r["finished"]:
            return f"> {deadline_s:.0f} s (still running, killed)"
        extra = (
            f" + catch-up of {len(r['catch_up'])} assets {r['catch_up_s']:.0f} s (exit {r['catch_up_exit']})"
            if "catch_up_s" in r else ""
        )
        return f"{r['wall_s']:.0f} s (exit {r['exit']}){extra}"
    if key == "spent_requests":
        return "no 429 met" if r[key] is None else str(r[key])
    if key == "alerts":
        sensors = "failure + service sensors" if r["service_sensor"] else "failure sensor only"
        return f"{r['alerts']} ({r['failed_runs']} failed runs; {sensors})"
    if key == "report":
        return "yes" if r["report"] else "no"
    if r["site_exit"] is None:
        return "not built (rows cut)"
    if r["links"] is None:
        return "the site has no page for the day" if r["site_exit"] == 0 else f"no day page (site exit {r['site_exit']})"
    return str(r["links"][key])


ROWS = [
    ("load (1, 5, 15 min) as the day started", "load"),
    ("wall time of the day", "wall_s"),
    (f"requests to {SPENT_MODEL} after its first per-day 429", "spent_requests"),
    ("alerts sent", "alerts"),
    ("the day's report exists", "report"),
    ("day page citations: resolved (200 now)", "resolved"),
    ("  unverified (no search returned the URL)", "unverified"),
    ("  dead (404 or unreachable now)", "dead"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.unattended", description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="ad60e36", help="the git ref of the code before the change")
    parser.add_argument("--flash-per-day", type=int, default=20, help="gemini-2.5-flash's daily quota at the fake API")
    parser.add_argument("--deadline", type=float, default=1200, help="seconds a side's day may run before it is killed")
    parser.add_argument("--rows", type=int, default=0, help="only the registries' first N rows (0: all)")
    args = parser.parse_args(argv)
    become_subreaper("a killed day's processes could outlive it")
    base = Path(tempfile.mkdtemp(prefix="nh-bench-unattended-"))
    before_tree = _tree_of(args.before, base / "before-tree")
    before_registry = _first_rows(base / "before-prompts.tsv", args.rows, before_tree / "registry" / "prompts.tsv")
    after_registry = _first_rows(registry_with_fallbacks(base / "after-prompts.tsv"), args.rows)
    sides = [  # the before side runs in its own tree, as its docs say; the after side never writes into this one
        Side(f"before ({args.before})", before_tree, before_registry, base / "before", cwd=before_tree),
        Side("after (working tree)", REPO_ROOT, after_registry, base / "after", cwd=base),
    ]
    print(f"one day ({DAY2}) through the real Gemini CLI 0.61.0 against the fake API: {SPENT_MODEL} "
          f"{args.flash_per_day} requests a day, other models free; deadline {args.deadline:.0f} s; "
          f"{'all rows' if not args.rows else f'first {args.rows} rows'}; {os.cpu_count()} cores; work in {base}")
    results = []
    for side in sides:
        results.append(run_side(side, args.flash_per_day, args.deadline, publish=not args.rows))
        print(f"  {side.name}: done [{load_average()}]", flush=True)
    width = max(len(label) for label, _ in ROWS) + 2
    columns = [max(len(side.name), *(len(_cell(r, k, args.deadline)) for _, k in ROWS)) + 2 for side, r in zip(sides, results)]
    print("\n" + ("figure".ljust(width) + "".join(s.name.ljust(c) for s, c in zip(sides, columns))).rstrip())
    for label, key in ROWS:
        print((label.ljust(width) + "".join(_cell(r, key, args.deadline).ljust(c) for r, c in zip(results, columns))).rstrip())
    print(f"\nmachine: {os.cpu_count()} cores, {load_average()} (1, 5, 15 min) at the end; /proc/loadavg "
          f"{Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
