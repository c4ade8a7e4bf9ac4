"""Headless Chromium, driven by Playwright, for the UI tests.

The browser is Debian's ``chromium`` (``scripts/install_test_services.sh``), never one downloaded by
``playwright install``. Both a missing browser and a missing Playwright make the tests fail with
the command that fixes it: a UI test that silently skips is a UI nobody tests.

Also here: the few things every UI test needs whatever Dagster version draws the pages —
dismissing the first-visit community dialog, screenshots under ``artifacts/ui/`` (git-ignored),
and waiting on the instance for runs and backfills the UI launched.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

import dagster as dg
import pytest

from nh_assets.settings import REPO_ROOT

CHROMIUM = Path(os.environ.get("NH_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps calling Google services, which on a
# closed network means a flood of failing connections; a fresh profile keeps runs independent.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1600, "height": 1000}
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "ui"


def launch_chromium(playwright, user_data_dir: Path):
    """A persistent context: Chromium refuses ``--user-data-dir`` through plain ``launch``."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `bash scripts/install_test_services.sh` (or set NH_CHROMIUM)")
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=VIEWPORT,
    )


@contextlib.contextmanager
def chromium_context(user_data_dir: Path, *, timeout_ms: int):
    """A fresh-profile browser context with a default timeout for every action, closed after use."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: run `bash scripts/setup.sh` (the dev extra holds it)")
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, user_data_dir)
        context.set_default_timeout(timeout_ms)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory):
    # The Dagster UI: pages that load data from the instance get 30 s.
    with chromium_context(tmp_path_factory.mktemp("chromium-profile"), timeout_ms=30_000) as context:
        yield context


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    dismiss_community_dialog(page)
    yield page
    page.close()


def dismiss_community_dialog(page) -> None:
    """Dagster shows a one-time 'Join the Dagster community' dialog over whatever page comes
    first; Playwright clicks it away whenever it would block an action."""
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"),
        lambda: page.get_by_role("button", name="Skip").click(),
    )


class Screenshots:
    """Numbered screenshots of each step, plus one named ``…-FAILED`` when a step raises."""

    def __init__(self, directory: Path = SCREENSHOT_DIR) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()

    def take(self, page, name: str, *, full_page: bool = False) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    @contextlib.contextmanager
    def on_failure(self, page, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.take(page, f"{name}-FAILED", full_page=True)
            raise


def wait_for_run(instance: dg.DagsterInstance, run_id: str, *, timeout_s: float) -> dg.DagsterRun:
    """The run once it reached a terminal status (success, failure or canceled)."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        if time.monotonic() > deadline:
            status = run.status.value if run else "unknown"
            pytest.fail(f"run {run_id} still {status} after {timeout_s:.0f}s")
        time.sleep(1)


# BulkActionStatus values (the enum is not public API); REQUESTED, CANCELING, FAILING are not done.
_BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, *, timeout_s: float):
    """The backfill once the daemon has finished it, whatever the outcome."""
    deadline = time.monotonic() + timeout_s
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill is not None and backfill.status.value in _BACKFILL_DONE:
            return backfill
        if time.monotonic() > deadline:
            status = backfill.status.value if backfill else "unknown"
            pytest.fail(f"backfill {backfill_id} still {status} after {timeout_s:.0f}s")
        time.sleep(2)
