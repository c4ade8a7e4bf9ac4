"""Lighthouse over a served build of 30 synthetic days (a script that prints scores, not a test).

    .venv/bin/python -m benchmarks.lighthouse [--days 30] [--min 95]
    bash scripts/lighthouse.sh

Builds DAYS synthetic days (``site_days``, with a planted rising topic from ``trend_days``) with
the real renderer and Pagefind, serves the build on loopback, and runs the pinned ``lighthouse``
CLI (``node_modules/.bin/lighthouse``) with Debian's Chromium on the index, a day page, search
with a query, a tag page, the trends page and a week page. Prints the four category scores per
page and the load average; exits 1 when any score is under ``--min``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from nh_assets.publishing.site.day_input import write_day
from nh_assets.publishing.site.site_build import SitePaths, build_site
from nh_assets.publishing.site.trends import iso_week
from nh_assets.settings import REPO_ROOT, load_settings
from nh_assets_tests.support.browser import CHROMIUM
from nh_assets_tests.support.site_days import days_back, synthetic_day
from nh_assets_tests.support.site_server import serve_site
from nh_assets_tests.support.trend_days import planted

CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
LIGHTHOUSE = REPO_ROOT / "node_modules" / ".bin" / "lighthouse"


def _scores(url: str, out_dir: Path) -> dict[str, int]:
    report = out_dir / "report.json"
    done = subprocess.run(
        [
            str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={report}",
            f"--only-categories={','.join(CATEGORIES)}", '--chrome-flags=--headless --no-sandbox',
        ],
        env={**os.environ, "CHROME_PATH": str(CHROMIUM)}, capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0 or not report.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"lighthouse failed on {url} (exit {done.returncode}): {last} — run it by hand to see why")
    categories = json.loads(report.read_text())["categories"]
    return {c: round(categories[c]["score"] * 100) for c in CATEGORIES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--min", type=int, default=95, help="lowest acceptable score in every category")
    args = parser.parse_args(argv)
    if args.days < 3:
        parser.error("--days must be at least 3: the day page scored is the third newest")
    if not LIGHTHOUSE.is_file():
        print(f"{LIGHTHOUSE} not found — run `bash scripts/setup.sh` (npm ci installs the pinned lighthouse)")
        return 2
    days = days_back(date(2026, 11, 20), args.days)
    with tempfile.TemporaryDirectory(prefix="nh-lighthouse-") as tmp:
        paths = SitePaths(site_dir=Path(tmp) / "site", src_dir=Path(tmp) / "site_src")
        for day in days:
            write_day(paths.src_dir, synthetic_day(day, tags=planted(day)))
        build_site(paths, site_url="https://neurohelix.example", pagefind_cli=load_settings({}).pagefind_cli)
        with serve_site(paths.site_dir) as origin:
            worst = _score_pages(origin, days, Path(tmp))
    print(f"lowest score {worst} (goal >= {args.min})")
    return 0 if worst >= args.min else 1


def _score_pages(origin: str, days: list[str], tmp: Path) -> int:
    pages = {
        "index": "/",
        "day page": f"/reports/{days[-3]}/",
        "search (query)": "/search/?q=model",
        "tag page": "/tags/gpu/",
        "trends": "/trends/",
        "week page": f"/weeks/{iso_week(date.fromisoformat(days[-1]))}/",
    }
    worst = 100
    print("load %.2f %.2f %.2f" % os.getloadavg())
    print(f"{'page':<16}" + "".join(f"{c:>16}" for c in CATEGORIES))
    for name, path in pages.items():
        scores = _scores(origin + path, tmp)
        worst = min(worst, *scores.values())
        print(f"{name:<16}" + "".join(f"{scores[c]:>16}" for c in CATEGORIES), flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
