"""Benchmark of the site build (a script that prints figures, not a test).

    .venv/bin/python -m benchmarks.site [--days 1100]

Writes DAYS synthetic days (three years at the default) under a temporary directory, then
prints: the full build time, a one-day incremental build time (one day's copy changed), a
new-day build time (one day added: the trends page moves), what a
visitor downloads for one search query (every /pagefind/ response, measured in headless
Chromium against a loopback server), and the size of the build. The load average is printed
before each figure: on a shared 2-core machine it explains most of the spread.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import threading
import time
from datetime import date, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.machine import load_average
from nh_assets.publishing.site.day_input import write_day
from nh_assets.publishing.site.site_build import SitePaths, build_site
from nh_assets.settings import load_settings
from nh_assets_tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from nh_assets_tests.support.site_days import days_back, synthetic_day

PLANTED = "quetzalcoatlus"
# The same benchmark before the trends, week pages and brief (1,100 days, issue 21).
BEFORE_S = {"full": 20.6, "incremental": 5.6}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _search_bytes(site_root: Path, query: str) -> tuple[int, int, int]:
    """(bytes of /pagefind/ responses, their count, results shown) for one query in Chromium."""
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site_root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sizes: list[int] = []
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            page = context.new_page()
            page.on(
                "response",
                lambda r: sizes.append(int(r.header_value("content-length") or 0)) if "/pagefind/" in r.url else None,
            )
            page.goto(f"http://127.0.0.1:{server.server_port}/search/?q={query}", wait_until="networkidle")
            page.get_by_role("status").filter(has_text="mention").wait_for(timeout=60_000)
            shown = page.locator("#search-results li").count()
            context.close()
    finally:
        server.shutdown()
        server.server_close()
    return sum(sizes), len(sizes), shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1100)
    args = parser.parse_args()
    pagefind = load_settings({"NH_DATA_ROOT": "/nonexistent"}).pagefind_cli
    with tempfile.TemporaryDirectory() as tmp:
        paths = SitePaths(site_dir=Path(tmp) / "site", src_dir=Path(tmp) / "site_src")
        days = days_back(date(2026, 11, 20), args.days)
        started = time.monotonic()
        for day in days:
            write_day(paths.src_dir, synthetic_day(day, extra=PLANTED if day == days[len(days) // 3] else ""))
        print(f"inputs: {len(days)} days written in {time.monotonic() - started:.1f}s")

        print(f"[{load_average()}] full build ...")
        full = build_site(paths, site_url="https://neurohelix.example", pagefind_cli=pagefind, full=True)
        print(
            f"full build: {full.duration_s:.1f}s (before the trends: {BEFORE_S['full']}s; {full.pages_rendered} pages "
            f"rendered, search index {full.search.duration_s:.1f}s for {full.search.pages} pages)"
        )

        write_day(paths.src_dir, synthetic_day(days[-10], extra="incremental change"))
        print(f"[{load_average()}] one-day incremental build ...")
        one = build_site(paths, site_url="https://neurohelix.example", pagefind_cli=pagefind)
        print(
            f"one-day incremental build: {one.duration_s:.1f}s (before the trends: {BEFORE_S['incremental']}s; "
            f"{one.pages_rendered} rendered, {one.pages_kept} kept, search index {one.search.duration_s:.1f}s)"
        )
        # A new day moves every trend window: the trends page, its week and its topics' tag pages follow.
        new_day = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
        write_day(paths.src_dir, synthetic_day(new_day))
        print(f"[{load_average()}] new-day build ...")
        added = build_site(paths, site_url="https://neurohelix.example", pagefind_cli=pagefind)
        print(
            f"new-day build: {added.duration_s:.1f}s ({added.pages_rendered} rendered, {added.pages_kept} kept, "
            f"search index {added.search.duration_s:.1f}s)"
        )

        print(f"[{load_average()}] search in Chromium ...")
        size, requests, shown = _search_bytes(paths.site_dir.resolve(), PLANTED)
        print(
            f"search payload for one query ({PLANTED!r}, {shown} result): {size / 1024:.0f} KB in {requests} "
            "requests (goal <= 300 KB)"
        )
        print(
            f"build size: {one.total_bytes / 1024 / 1024:.1f} MB in {one.file_count} files "
            f"(pagefind/: {_dir_size(paths.site_dir.resolve() / 'pagefind') / 1024 / 1024:.1f} MB)"
        )
        print(f"[{load_average()}] done")


def _dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
