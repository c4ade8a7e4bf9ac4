"""The built site in headless Chromium, served from a loopback ``http.server`` thread.

Every request the browser makes is recorded through Playwright's routing: anything not for the
loopback origin is aborted and fails the test, as does any console error (a CSP violation shows
up there) or uncaught page error. One day's "model answer" carries script tags, event handlers
and ``javascript:`` links, and its dashboard copy a raw ``<script>``: none may run.
"""

from __future__ import annotations

import functools
import threading
from datetime import date
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nh_assets.publishing.site.day_input import write_day
from nh_assets.publishing.site.site_build import SitePaths, build_site
from nh_assets.settings import load_settings
from nh_assets_tests.support.browser import chromium_context
from nh_assets_tests.support.site_days import days_back, synthetic_day

pytestmark = pytest.mark.browser

DAYS = days_back(date(2026, 11, 20), 8)
OLD_DAY, EVIL_DAY = DAYS[1], DAYS[-1]
EVIL_ANSWER = (
    "Intro <script>window.__pwned = 'script'</script> and "
    '<img src="/x.png" onerror="window.__pwned = \'onerror\'"> and '
    "[a link](javascript:window.__pwned='link') and "
    '<a href="javascript:window.__pwned=\'raw\'" id="evil">raw link</a>.'
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("site")
    paths = SitePaths(site_dir=base / "site", src_dir=base / "site_src")
    for day in DAYS:
        if day == OLD_DAY:
            write_day(paths.src_dir, synthetic_day(day, extra="An axolotl appears in no other day."))
        elif day == EVIL_DAY:
            evil = synthetic_day(day, answer=EVIL_ANSWER)
            evil.dashboard_html = "<h2>Board</h2><script>window.__pwned='dashboard'</script><p onclick=\"x()\">ok</p>"
            write_day(paths.src_dir, evil)
        else:
            write_day(paths.src_dir, synthetic_day(day))
    build_site(paths, site_url="https://neurohelix.example", pagefind_cli=load_settings({}).pagefind_cli)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(paths.site_dir.resolve())))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site_browser(tmp_path_factory: pytest.TempPathFactory):
    # A static site on loopback: 20 s is already generous.
    with chromium_context(tmp_path_factory.mktemp("chromium-site"), timeout_ms=20_000) as context:
        yield context


class Watched:
    """A page whose every request, console error, page error and dialog is recorded."""

    def __init__(self, context, origin: str) -> None:
        self.page = context.new_page()
        self.origin = origin
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog: {d.message}"), d.dismiss()))

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def goto(self, path: str) -> None:
        self.page.goto(self.origin + path, wait_until="networkidle")

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests to other hosts: {self.outside}"
        assert self.errors == [], self.errors
        assert self.requests and all(u.startswith(self.origin + "/") for u in self.requests)


@pytest.fixture
def watched(site_browser, site_url):
    page = Watched(site_browser, site_url)
    yield page
    page.page.close()


def test_the_index_lists_the_days_and_a_day_page_shows_its_report(watched):
    watched.goto("/")
    cards = watched.page.locator("ol.days > li")
    assert cards.count() == len(DAYS)
    assert cards.first.get_by_role("link").first.inner_text() == f"NeuroHelix Daily Report — {DAYS[-1]}"
    cards.nth(2).get_by_role("heading").get_by_role("link").click()
    watched.page.wait_for_url(f"**/reports/{DAYS[-3]}/")
    watched.page.get_by_role("heading", level=1, name=f"NeuroHelix Daily Report — {DAYS[-3]}").wait_for()
    watched.page.get_by_role("heading", name="Executive Summary").wait_for()
    watched.page.get_by_text("Generation time").wait_for()
    watched.page.get_by_text("AI Ecosystem Watch").click()  # a research note opens
    watched.page.get_by_role("link", name="ai_ecosystem_watch source one").wait_for()
    watched.assert_clean()


def test_search_finds_a_word_only_an_older_day_has_and_links_to_it(watched):
    watched.goto("/")
    watched.page.get_by_role("searchbox", name="Search every report").fill("axolotl")
    watched.page.get_by_role("searchbox", name="Search every report").press("Enter")
    watched.page.wait_for_url("**/search/?q=axolotl")
    status = watched.page.get_by_role("status")
    status.filter(has_text="1 day mentions “axolotl”").wait_for()
    results = watched.page.locator("#search-results li")
    assert results.count() == 1
    results.get_by_role("link").click()
    watched.page.wait_for_url(f"**/reports/{OLD_DAY}/")
    assert "axolotl" in watched.page.locator("main").inner_text()
    watched.assert_clean()


def test_a_tag_filter_narrows_the_list(watched):
    watched.goto("/")
    everything = watched.page.locator("ol.days > li").count()
    chip = watched.page.locator("ol.days > li").first.locator("a.chip:not(.chip-cat)").first
    tag = chip.inner_text().lstrip("#")
    chip.click()
    watched.page.wait_for_url("**/tags/*/")
    narrowed = watched.page.locator("ol.days > li")
    assert 1 <= narrowed.count() < everything
    for i in range(narrowed.count()):
        assert f"#{tag}" in narrowed.nth(i).inner_text()
    watched.page.get_by_role("link", name="Categories").first.click()
    watched.page.locator("ul.terms a").first.click()
    assert 1 <= watched.page.locator("ol.days > li").count() <= everything
    watched.assert_clean()


def test_jump_to_a_date_opens_that_day(watched):
    watched.goto("/")
    watched.page.get_by_label("Jump to a date").fill(OLD_DAY)
    watched.page.get_by_role("button", name="Go").click()
    watched.page.wait_for_url(f"**/reports/{OLD_DAY}/")
    watched.goto("/latest/")
    watched.page.wait_for_url(f"**/reports/{DAYS[-1]}/")
    watched.assert_clean()


def test_nothing_from_a_model_answer_runs(watched):
    watched.goto(f"/reports/{EVIL_DAY}/")
    main = watched.page.locator("main")
    assert "<script>window.__pwned" in main.inner_text()  # shown as text, not run
    assert watched.page.locator("main script, main [onerror], main [onclick]").count() == 0
    assert watched.page.locator('a[href^="javascript:"]').count() == 0
    watched.page.get_by_text("raw link").click()
    watched.goto(f"/reports/{EVIL_DAY}/dashboard/")
    watched.page.get_by_role("heading", name="Board", exact=True).wait_for()
    assert watched.page.evaluate("() => window.__pwned === undefined")
    assert watched.page.locator("script:not([src])").count() == 0
    # The onerror image never loaded anything either: no /x.png request was made.
    assert not [u for u in watched.requests if u.endswith("/x.png")]
    watched.assert_clean()


def test_keyboard_users_can_skip_to_the_content(watched):
    watched.goto(f"/reports/{DAYS[0]}/")
    watched.page.keyboard.press("Tab")
    assert watched.page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    watched.page.keyboard.press("Enter")
    assert watched.page.evaluate("() => document.activeElement.id") == "content"
    assert watched.page.locator("header[role=banner], main, footer[role=contentinfo], nav").count() >= 4
    watched.assert_clean()


LAYOUT_SHIFT = """() => new Promise((resolve) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
  }).observe({ type: "layout-shift", buffered: true });
  setTimeout(() => resolve(total), 500);
})"""


def test_search_results_arriving_do_not_move_the_page(watched):
    # Lighthouse's cumulative layout shift, read from the browser's own layout-shift entries, on
    # the phone-sized viewport Lighthouse emulates (where results once shifted the page by 0.65).
    watched.page.set_viewport_size({"width": 412, "height": 823})
    watched.goto("/search/?q=model")
    watched.page.get_by_role("status").filter(has_text="mention").wait_for()
    assert watched.page.locator("#search-results li").count() > 1
    assert watched.page.evaluate(LAYOUT_SHIFT) <= 0.1
    watched.assert_clean()
