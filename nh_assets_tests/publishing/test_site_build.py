"""The site built from synthetic days, with the real renderer, nh3 and Pagefind, under tmp_path."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from nh_assets.publishing.site.day_input import DayInputError, read_day, write_day
from nh_assets.publishing.site.html_policy import sanitize_html
from nh_assets.publishing.site.pages import PER_PAGE
from nh_assets.publishing.site.search_index import SearchIndexError
from nh_assets.publishing.site.site_build import SiteBuildError, SitePaths, build_site
from nh_assets.settings import load_settings
from nh_assets_tests.support.site_days import days_back, synthetic_day
from nh_assets_tests.support.site_links import broken_links, refs_in

pytestmark = pytest.mark.fast

SITE_URL = "https://neurohelix.example"
DAYS = days_back(date(2026, 11, 20), PER_PAGE + 6)  # two index pages


@pytest.fixture
def pagefind() -> str:
    return load_settings({"NH_DATA_ROOT": "/nonexistent"}).pagefind_cli


@pytest.fixture
def built(tmp_path: Path, pagefind: str):
    paths = SitePaths(site_dir=tmp_path / "data" / "site", src_dir=tmp_path / "data" / "site_src")
    for day in DAYS:
        write_day(paths.src_dir, synthetic_day(day, missing=("dashboard_renderer",) if day == DAYS[3] else ()))
    report = build_site(paths, site_url=SITE_URL, pagefind_cli=pagefind)
    return paths, report


def test_every_day_gets_a_page_and_the_index_lists_them_newest_first(built):
    paths, report = built
    site = paths.site_dir
    assert site.is_symlink() and report.full and report.days == len(DAYS) and report.newest_day == DAYS[-1]
    for day in DAYS:
        page = (site / "reports" / day / "index.html").read_text()
        assert f"NeuroHelix Daily Report — {day}" in page
        assert "Executive Summary" in page and "Research notes" in page and "Continuity Builder" in page
        assert f'href="https://example.org/{day}/ai_ecosystem_watch/1"' in page  # a note's source
    home = (site / "index.html").read_text()
    listed = [ref for _tag, _attr, ref in refs_in(site / "index.html") if ref.startswith("/reports/")]
    assert listed[0] == f"/reports/{DAYS[-1]}/" and len(set(listed)) == PER_PAGE
    assert 'href="/page/2/"' in home
    older = [r for _t, _a, r in refs_in(site / "page/2/index.html") if r.startswith("/reports/")]
    assert set(older) == {f"/reports/{d}/" for d in DAYS[: len(DAYS) - PER_PAGE]}
    assert f"url=/reports/{DAYS[-1]}/" in (site / "latest/index.html").read_text()
    assert f"/latest /reports/{DAYS[-1]}/ 302" in (site / "_redirects").read_text()
    assert json.loads((site / "days.json").read_text()) == DAYS
    assert (site / "404.html").is_file() and (site / "pagefind/pagefind.js").is_file()
    incomplete = (site / "reports" / DAYS[3] / "index.html").read_text()
    assert "Incomplete day." in incomplete and "dashboard_renderer" in incomplete


def test_every_page_has_the_strict_csp_and_no_inline_script(built):
    paths, _ = built
    for page in paths.site_dir.rglob("*.html"):
        text = html.unescape(page.read_text())
        assert "script-src 'self' 'wasm-unsafe-eval'" in text and "default-src 'none'" in text, page
        assert "<script>" not in text and "<script " not in text.replace('<script src="/', "").replace(
            '<script type="module" src="/', ""
        ), page


def test_atom_feed_is_well_formed_with_absolute_links(built):
    paths, _ = built
    feed = ET.parse(paths.site_dir / "feed.xml").getroot()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("a:entry", ns)
    assert entries and entries[0].find("a:link", ns).get("href") == f"{SITE_URL}/reports/{DAYS[-1]}/"


def test_every_link_resolves_inside_the_build(built):
    paths, _ = built
    assert broken_links(paths.site_dir) == []


def test_a_changed_day_rerenders_its_page_and_the_indexes_only(built, pagefind):
    paths, first = built
    untouched = paths.site_dir / "reports" / DAYS[0] / "index.html"
    inode_before = untouched.stat().st_ino
    write_day(paths.src_dir, synthetic_day(DAYS[5], extra="quokka"))
    second = build_site(paths, site_url=SITE_URL, pagefind_cli=pagefind)
    assert not second.full and second.changed_days == [DAYS[5]]
    assert 0 < second.pages_rendered < first.pages_rendered / 4
    # Same inode: the new build hard-linked the page instead of rendering it again.
    assert (paths.site_dir / "reports" / DAYS[0] / "index.html").stat().st_ino == inode_before
    assert "quokka" in (paths.site_dir / "reports" / DAYS[5] / "index.html").read_text()
    assert first.build_dir.is_dir(), "the previous build is kept for readers and deploys still using it"
    assert broken_links(paths.site_dir) == []


def test_a_failed_build_leaves_the_published_site_untouched(built, tmp_path):
    paths, first = built
    live = paths.site_dir.resolve()
    write_day(paths.src_dir, synthetic_day(DAYS[-1], extra="wombat"))
    with pytest.raises(SearchIndexError, match="Pagefind failed"):
        build_site(paths, site_url=SITE_URL, pagefind_cli="false")
    assert paths.site_dir.resolve() == live
    assert "wombat" not in (paths.site_dir / "reports" / DAYS[-1] / "index.html").read_text()
    assert sorted(p.name for p in paths.builds_dir.iterdir() if p.is_dir()) == [first.build_dir.name]


def test_a_real_directory_where_the_site_goes_is_refused_with_the_fix(tmp_path, pagefind):
    paths = SitePaths(site_dir=tmp_path / "publishing", src_dir=tmp_path / "site_src")
    paths.site_dir.mkdir()
    (paths.site_dir / "2026-11-20.json").write_text("{}")
    with pytest.raises(SiteBuildError) as error:
        build_site(paths, site_url=SITE_URL, pagefind_cli=pagefind)
    assert "\n" not in str(error.value) and "set NH_SITE_DIR" in str(error.value)
    assert (paths.site_dir / "2026-11-20.json").is_file()


def test_a_damaged_day_copy_is_reported_in_one_line(tmp_path):
    bad = tmp_path / "2026-11-20.json"
    bad.write_text('{"date": "2026-11-20"}')
    with pytest.raises(DayInputError) as error:
        read_day(bad)
    assert (
        "\n" not in str(error.value)
        and str(bad) in str(error.value)
        and "materialize the site asset" in str(error.value)
    )


@pytest.mark.parametrize(
    ("markup", "gone"),
    [
        ("<p>a<script>alert(1)</script></p>", "alert"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:"),
        ('<p style="background:url(https://evil.example/x)">x</p>', "evil.example"),
        ('<iframe src="https://evil.example"></iframe>', "iframe"),
        ('<a href="reports/elsewhere">x</a>', "reports/elsewhere"),
    ],
)
def test_the_policy_removes_what_could_run_or_load(markup, gone):
    cleaned, removed = sanitize_html(markup)
    assert gone not in cleaned and removed >= 1


@pytest.mark.parametrize("markup", ["a <![ b", "<![CDATA[x", "<p>x</p><![ b <p>y</p>", "<p>s</p>" + "</" * 80_000])
def test_the_policy_takes_any_markup_a_model_writes(markup):
    # A dashboard with "<![" once made the site build raise (the removed items were counted with
    # the standard library's parser).
    cleaned, _ = sanitize_html(markup)
    assert "<![" not in cleaned and "</" * 2 not in cleaned


def test_the_policy_keeps_structure_and_outbound_links():
    cleaned, removed = sanitize_html('<h2 class="x">T</h2><p><a href="https://arxiv.org/abs/1">paper</a></p>')
    assert removed == 0
    assert cleaned == (
        '<h2 class="x">T</h2><p><a href="https://arxiv.org/abs/1" rel="noopener noreferrer nofollow">paper</a></p>'
    )
