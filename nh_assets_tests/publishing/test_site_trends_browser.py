"""The trends page as a reader sees it, in headless Chromium over synthetic days with a planted trend.

``trend_days`` makes ``gpu`` rise (one day in the week before, six in the last, under three
spellings) and names ``quantum annealing`` for the first time on the last two days. The test reads
the page through its roles and text, as a reader would; each chart's table is compared with the
days' own tags, and each chart's lines with its table.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from nh_assets.publishing.site.day_input import read_day
from nh_assets.publishing.site.site_build import SitePaths, build_site
from nh_assets.publishing.site.svg_charts import BOTTOM, HEIGHT, TOP
from nh_assets.publishing.site.topics import load_topics
from nh_assets.publishing.site.trends import iso_week
from nh_assets.settings import load_settings
from nh_assets_tests.support.browser import chromium_context
from nh_assets_tests.support.site_server import serve_site
from nh_assets_tests.support.trend_days import DAYS, NEW_DAYS, NEW_TOPIC, RISING_BEFORE, write_trend_days

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("trends-site")
    paths = SitePaths(site_dir=base / "site", src_dir=base / "site_src")
    write_trend_days(paths.src_dir)
    build_site(paths, site_url="https://neurohelix.example", pagefind_cli=load_settings({}).pagefind_cli)
    with serve_site(paths.site_dir) as origin:
        yield origin, paths


@pytest.fixture(scope="module")
def page(served, tmp_path_factory: pytest.TempPathFactory):
    origin, _paths = served
    with chromium_context(tmp_path_factory.mktemp("chromium-trends"), timeout_ms=20_000) as context:
        page = context.new_page()
        outside: list[str] = []
        errors: list[str] = []

        def route(r):
            if r.request.url.startswith(origin + "/"):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(origin + "/trends/", wait_until="networkidle")
        yield page
        assert outside == [] and errors == []


def _table(locator) -> list[list[str]]:
    return locator.locator("tr").evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def test_the_planted_topic_is_listed_as_rising_with_its_counts(page):
    rising = page.get_by_role("table", name="Rising topics: last 7 days against the 7 before")
    rows = _table(rising)
    assert rows[0] == ["Topic", "Last 7 days", "7 days before", "Change"]
    assert rows[1] == ["gpu", "6", "1", "+5"]
    rising.get_by_role("link", name="gpu", exact=True).click()
    page.wait_for_url("**/tags/gpu/")
    assert page.locator("ol.days > li").count() == 7  # every spelling, one topic
    history = page.locator(".history").inner_text()
    assert f"FIRST SEEN\n{RISING_BEFORE[0]}" in history.upper() and "DAYS NAMED\n7" in history.upper()
    page.go_back()


def test_a_topic_seen_for_the_first_time_is_listed_as_new(page):
    rows = _table(page.get_by_role("table", name="New topics this week"))
    assert [NEW_TOPIC, NEW_DAYS[0], str(len(NEW_DAYS))] in rows
    assert not [r for r in rows if r[0] == "gpu"]


def test_each_chart_table_matches_the_days_and_its_lines_match_the_table(page, served):
    _origin, paths = served
    topics = load_topics()
    named = {}
    for day in DAYS:
        p = read_day(paths.src_dir / f"{day}.json").payload
        named[day] = {topics.key(t) for t in p.tags} | set(p.categories)
    end = date.fromisoformat(DAYS[-1])
    charts = page.locator("figure.chart-block")
    assert charts.count() == 6
    for i in range(charts.count()):
        chart = charts.nth(i)
        rows = _table(chart.locator("table"))
        header, body = rows[0], rows[1:]
        window = 7 if "last 7 days" in header_title(chart) else 30 if "last 30 days" in header_title(chart) else 365
        start = end - timedelta(days=window - 1)
        for row in body:
            in_bucket = [
                d for d in DAYS if start <= date.fromisoformat(d) <= end
                and (d == row[0] if header[0] == "Day" else iso_week(date.fromisoformat(d)) == row[0])
            ]
            for name, shown in zip(header[1:], row[1:]):
                assert int(shown) == sum(name in named[d] for d in in_bucket), (header_title(chart), row[0], name)
        # The lines: each polyline's points, read back through the y axis, are the table's columns.
        top = int(chart.locator("svg.chart text").nth(1).text_content())
        lines = chart.locator("svg.chart polyline").evaluate_all("ls => ls.map(l => l.getAttribute('points'))")
        assert len(lines) == len(header) - 1
        for column, points in enumerate(lines, start=1):
            ys = [float(pair.split(",")[1]) for pair in points.split()]
            values = [round(top * (1 - (y - TOP) / (HEIGHT - TOP - BOTTOM))) for y in ys]
            assert values == [int(r[column]) for r in body]


def header_title(chart) -> str:
    return chart.locator("h3").inner_text()


def test_every_topic_on_the_page_links_to_its_tag_page(page, served):
    origin, paths = served
    hrefs = page.locator("main a[href^='/tags/']").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert hrefs
    for href in set(hrefs):
        assert (paths.site_dir / href.strip("/") / "index.html").is_file(), href
    assert not re.search(r"<script(?![^>]*src=\"/)", page.content())
