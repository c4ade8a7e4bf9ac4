"""The trends page and tag histories in a real build (renderer, nh3, Pagefind), and what a new day re-renders."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from nh_assets.publishing.site.day_input import read_day, write_day
from nh_assets.publishing.site.pages import slug
from nh_assets.publishing.site.topics import load_topics
from nh_assets.publishing.site.site_build import SitePaths, build_site
from nh_assets.settings import load_settings
from nh_assets_tests.support.site_days import synthetic_day
from nh_assets_tests.support.site_links import broken_links
from nh_assets_tests.support.trend_days import DAYS, NEW_DAYS, RISING_BEFORE, RISING_NOW, write_trend_days

pytestmark = pytest.mark.fast

SITE_URL = "https://neurohelix.example"


@pytest.fixture
def built(tmp_path: Path):
    paths = SitePaths(site_dir=tmp_path / "site", src_dir=tmp_path / "site_src")
    write_trend_days(paths.src_dir)
    pagefind = load_settings({"NH_DATA_ROOT": "/nonexistent"}).pagefind_cli
    build_site(paths, site_url=SITE_URL, pagefind_cli=pagefind)
    return paths, pagefind


def _text(path: Path) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", path.read_text())))


def test_three_spellings_are_one_topic_with_one_tag_page(built):
    paths, _ = built
    site = paths.site_dir
    assert not (site / "tags" / "gpus").exists()
    gpu = (site / "tags" / "gpu" / "index.html").read_text()
    listed = set(re.findall(r'href="/reports/(\d{4}-\d\d-\d\d)/"', gpu.split('<ol class="days"')[1]))
    assert listed == set(RISING_BEFORE + RISING_NOW)
    history = _text(site / "tags" / "gpu" / "index.html")
    assert f"First seen {RISING_BEFORE[0]}" in history and f"Last seen {DAYS[-1]}" in history
    assert "Days named 7" in history and 'class="sparkline"' in gpu
    # Every chip, whatever its spelling, links to the one page.
    for day in RISING_NOW:
        assert 'href="/tags/gpu/"' in (site / "reports" / day / "index.html").read_text()
    assert broken_links(site) == []


def test_the_trends_page_is_static_and_names_the_rising_and_new_topics(built):
    paths, _ = built
    page = (paths.site_dir / "trends" / "index.html").read_text()
    assert "<script>" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<svg class=\"chart\"") == 6 and page.count('<table class="chart-table"') == 6
    text = _text(paths.site_dir / "trends" / "index.html")
    assert "Rising topics: last 7 days against the 7 before Topic Last 7 days 7 days before Change gpu 6 1 +5" in text
    assert f"quantum annealing {NEW_DAYS[0]} 2" in text


def test_a_new_day_rerenders_the_trends_page_and_its_own_topics_only(built):
    paths, pagefind = built
    live = paths.site_dir
    before = {p.relative_to(live.resolve()): p.stat().st_ino for p in live.resolve().rglob("*.html")}
    new_day = "2026-11-21"
    write_day(paths.src_dir, synthetic_day(new_day, tags=("GPU",)))
    report = build_site(paths, site_url=SITE_URL, pagefind_cli=pagefind)
    assert report.changed_days == [new_day]
    after = {p.relative_to(live.resolve()): p.stat().st_ino for p in live.resolve().rglob("*.html")}
    # A page rendered again is a new file; a page kept is a hard link to the old one (same inode).
    rendered = {str(p) for p, ino in after.items() if before.get(p) != ino}
    topics = load_topics()
    named = {slug(topics.key(t)) for t in read_day(paths.src_dir / f"{new_day}.json").payload.tags}
    assert "trends/index.html" in rendered and "tags/gpu/index.html" in rendered
    retagged = {p.split("/")[1] for p in rendered if p.startswith("tags/") and p != "tags/index.html"}
    assert retagged <= named
    kept = {str(p).split("/")[1] for p in after if str(p).startswith("tags/") and str(p) not in rendered}
    assert len(kept - {"index.html"}) > 30, "tag pages of topics the new day does not name stay as they were"
    assert {p for p in rendered if p.startswith("reports/")} == {
        f"reports/{new_day}/index.html",
        f"reports/{new_day}/dashboard/index.html",
        f"reports/{DAYS[-1]}/index.html",  # its "next day" link
    }


def test_a_week_page_has_its_briefs_its_rising_topics_and_links_to_its_days(built):
    paths, _ = built
    week = "2026-W47"  # Monday 16 to Sunday 22 November; the days end on Friday the 20th
    page = _text(paths.site_dir / "weeks" / week / "index.html")
    in_week = [d for d in DAYS if "2026-11-16" <= d <= "2026-11-22"]
    raw = (paths.site_dir / "weeks" / week / "index.html").read_text()
    assert re.findall(r'href="/reports/(\d{4}-\d\d-\d\d)/"', raw) == in_week
    for day in in_week:
        assert " ".join(read_day(paths.src_dir / f"{day}.json").brief) in page
    # gpu: 5 days this week (16th–20th), 2 the week before (the 10th and Sunday the 15th).
    assert "Rising topics: week 2026-W47 against the week before Topic This week Week before Change gpu 5 2 +3" in page
    assert (paths.site_dir / "weeks" / "2026-W45" / "index.html").is_file()  # every week that has a day


def test_the_feed_has_an_entry_per_week_after_its_days(built):
    paths, _ = built
    import xml.etree.ElementTree as ET

    atom = {"a": "http://www.w3.org/2005/Atom"}
    entries = ET.parse(paths.site_dir / "feed.xml").getroot().findall("a:entry", atom)
    links = [e.find("a:link", atom).get("href") for e in entries]
    assert links[0] == f"{SITE_URL}/reports/{DAYS[-1]}/"
    weeks = [link for link in links if "/weeks/" in link]
    assert weeks == [f"{SITE_URL}/weeks/2026-W{n}/" for n in (47, 46, 45, 44)]
    week47 = entries[links.index(f"{SITE_URL}/weeks/2026-W47/")]
    first = read_day(paths.src_dir / f"{DAYS[-1]}.json").brief[0]
    assert first in week47.find("a:summary", atom).text
    day_entry = entries[0].find("a:summary", atom).text
    assert day_entry.startswith(" ".join(read_day(paths.src_dir / f"{DAYS[-1]}.json").brief))
