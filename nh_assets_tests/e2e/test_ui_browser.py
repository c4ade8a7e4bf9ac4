"""The operator's path through the Dagster UI, in headless Chromium against a real ``dagster dev``.

One webserver + daemon serves the whole module (starting one costs ~20s), using the fake
``gemini`` CLI and temporary directories. The tests run in file order because each builds on
the instance the previous ones left: the lineage graph, one partition launched from an asset
page, a two-day backfill of the whole graph, then the report's latest materialization.

Every launch is a click in the UI; the instance is only read, to wait for the daemon and to
know what the pages should show. Locators are by role and text, found by exploring Dagster
1.13's pages; screenshots of each step go to ``artifacts/ui/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from nh_assets.partitions import daily_partitions
from nh_assets.formats.vocabulary import REPORT_SECTIONS
from nh_assets_tests.support.browser import Screenshots, wait_for_backfill, wait_for_run
from nh_assets_tests.support.dagster_server import DagsterServer, running_dagster
from nh_assets_tests.support.fakes import FAKE_WRANGLER, install_fake, pipeline_env

pytestmark = pytest.mark.browser

PARTITION_START = date(2026, 11, 1)
RESEARCH_ASSET, RESEARCH_DAY = "ai_ecosystem_watch", "2026-11-20"
REPORT_ASSET = "daily_aggregator"


@dataclass(frozen=True)
class DagsterUI:
    server: DagsterServer
    instance: dg.DagsterInstance
    data_root: Path
    fake_cli_log: Path
    shots: Screenshots

    def url(self, path: str) -> str:
        return self.server.url + path


def _backfill_days() -> tuple[str, str]:
    # The two newest days. A range that ends before today also makes Dagster target the next
    # day of assets that read yesterday (novelty_filter), whose same-day inputs that day lacks.
    last = daily_partitions(PARTITION_START, "UTC").get_last_partition_key()
    if last is None or date.fromisoformat(last) <= date.fromisoformat(RESEARCH_DAY):
        pytest.fail(f"the clock says the newest partition is {last}; these tests need a day after {RESEARCH_DAY}")
    keys = daily_partitions(PARTITION_START, "UTC").get_partition_keys()
    return keys[-2], keys[-1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("dagster-ui")
    env = {
        **os.environ,
        **pipeline_env(root, NH_PARTITION_START=PARTITION_START.isoformat()),
        "FAKE_GEMINI_LOG": str(root / "fake_cli.jsonl"),
        # The whole graph includes site_deployment: it deploys through the fake wrangler, with a
        # token that is not one, so a test can never publish (without a token it would skip).
        "NH_WRANGLER_CLI": str(install_fake(root / "bin" / "wrangler", FAKE_WRANGLER)),
        "CLOUDFLARE_API_TOKEN": "fake-token-for-ui-tests",
        "FAKE_WRANGLER_LOG": str(root / "fake_wrangler.jsonl"),
    }
    home = Path(env["DAGSTER_HOME"])
    with running_dagster(env) as server, dg.DagsterInstance.from_config(str(home)) as instance:
        yield DagsterUI(server, instance, root / "data", root / "fake_cli.jsonl", Screenshots())


def _canvas_menu(page, canvas, action: str) -> None:
    """Pick ``action`` from the lineage canvas's own context menu (right-click its empty
    bottom-left corner, not a node). Dagster's first-visit community dialog can pop up right
    after the menu opens; dismissing it closes the menu too, so the menu is opened again."""
    for _ in range(3):
        canvas.click(button="right", position={"x": 30, "y": canvas.bounding_box()["height"] - 30})
        try:
            page.get_by_role("menuitem", name=action).click(timeout=10_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"the lineage canvas menu never offered {action!r}")


def _graph_nodes(page) -> list[dict]:
    """Every node the lineage graph currently draws: groups and assets, with their boxes.

    Only nodes inside the viewport are in the DOM. Zoomed in, an asset node carries its full
    name in ``data-tooltip``; zoomed out it shows a middle-truncated label (``conce…_synthesizer``).
    """
    return page.locator("svg foreignObject").evaluate_all(
        """els => els.map(e => ({
            group: e.classList.contains('group'),
            x: +e.getAttribute('x'), y: +e.getAttribute('y'),
            w: +e.getAttribute('width'), h: +e.getAttribute('height'),
            label: (e.querySelector('[data-tooltip]')?.getAttribute('data-tooltip') || e.textContent || '').trim(),
        })).filter(n => n.label)"""
    )


def _label_names(label: str, names: set[str]) -> set[str]:
    if "…" not in label:
        return {label} & names
    head, tail = label.split("…", 1)
    return {n for n in names if n.startswith(head) and n.endswith(tail) and len(n) > len(head) + len(tail)}


def _drawn_prompts(page, names: set[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(group name → box, prompt id → node box) for what the graph draws now."""
    groups, found = {}, {}
    for node in _graph_nodes(page):
        if node["group"]:
            groups[node["label"]] = node
            continue
        matches = _label_names(node["label"], names)
        assert len(matches) <= 1, f"graph node {node['label']!r} is ambiguous: {sorted(matches)}"
        if matches:
            found[matches.pop()] = node
    return groups, found


def _settled_drawing(page, names: set[str]) -> tuple[dict, dict]:
    """What the graph draws once the layout has settled: every name, or the same drawing three
    reads in a row (a busy machine lays the graph out slowly; a fixed pause would judge it early)."""
    deadline, last, same = time.monotonic() + 20, None, 0
    while True:
        page.wait_for_timeout(250)
        groups, found = _drawn_prompts(page, names)
        drawing = (sorted(groups), sorted((name, tuple(box.values())) for name, box in found.items()))
        same = same + 1 if drawing == last else 0
        last = drawing
        if set(found) == names or same >= 2 or time.monotonic() > deadline:
            return groups, found


def _inside(inner: dict, outer: dict) -> bool:
    return (
        outer["x"] <= inner["x"] and inner["x"] + inner["w"] <= outer["x"] + outer["w"]
        and outer["y"] <= inner["y"] and inner["y"] + inner["h"] <= outer["y"] + outer["h"]
    )


def _toast_view_link(page, href_part: str):
    """The 'View' link of the toast Dagster shows after a launch."""
    return page.get_by_role("link", name="View", exact=True).and_(page.locator(f"a[href*='{href_part}']"))


def test_lineage_shows_every_prompt_in_its_wave_group(ui: DagsterUI, page, registry):
    waves = {spec.wave for spec in registry.prompts}
    names = {spec.prompt_id for spec in registry.prompts}
    with ui.shots.on_failure(page, "01-lineage"):
        page.goto(ui.url("/asset-groups"))
        page.get_by_text("Global asset lineage").wait_for()
        page.get_by_role("button", name="Materialize all…").wait_for()
        graph = page.locator("svg").filter(has=page.locator("foreignObject"))
        # Collapsed, each wave is one box named after it (other extensions may add groups).
        for wave in sorted(waves):
            graph.locator("foreignObject.group").filter(has_text=re.compile(rf"^{wave}(\W|\d|$)")).wait_for()
        ui.shots.take(page, "01-lineage-waves")

        # Every prompt on one screen: without the sidebar, top-down (the graph is wide rather
        # than tall then, and Dagster zooms it to fit), every group expanded. Only nodes inside
        # the viewport are drawn, so what is off-screen cannot be found.
        sidebar_toggle = page.get_by_role("img", name="panel_show_right")
        page.get_by_role("button").filter(has=sidebar_toggle, has_not_text="navigation").click()
        canvas = page.locator("[data-svg-viewport]")
        for action in ("Change graph to vertical orientation", "Expand all groups"):
            _canvas_menu(page, canvas, action)
        zoom_out = page.get_by_role("button").filter(has=page.get_by_role("img", name="zoom_out"))
        for _ in range(4):
            groups, found = _settled_drawing(page, names)
            if set(found) == names:
                break
            zoom_out.click()
        ui.shots.take(page, "02-lineage-expanded")

    assert set(found) == names, f"missing from the graph: {sorted(names - set(found))}"
    assert waves <= set(groups), f"wave groups {sorted(waves)}; group boxes drawn {sorted(groups)}"
    misplaced = [spec.prompt_id for spec in registry.prompts if not _inside(found[spec.prompt_id], groups[spec.wave])]
    assert not misplaced, f"drawn outside their wave's group box: {misplaced}"


def test_materialize_one_partition_from_the_asset_page(ui: DagsterUI, page):
    with ui.shots.on_failure(page, "03-materialize"):
        page.goto(ui.url(f"/assets/{RESEARCH_ASSET}"))
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(f"Launch runs to materialize {RESEARCH_ASSET}").wait_for()
        partitions = dialog.get_by_role("textbox")
        partitions.fill(RESEARCH_DAY)
        partitions.press("Enter")
        dialog.get_by_text("1 partition", exact=True).wait_for()
        ui.shots.take(page, "03-materialize-dialog")
        dialog.get_by_role("button", name="Launch 1 run").click()

        _toast_view_link(page, "/runs/").click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        run_id = page.url.split("/runs/")[1].split("?")[0]
        run = wait_for_run(ui.instance, run_id, timeout_s=180)
        assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run_id} {run.status.value}; see {ui.server.log}"
        page.get_by_text("Success", exact=True).first.wait_for()
        ui.shots.take(page, "04-run-success")

    assert run.tags.get("dagster/partition") == RESEARCH_DAY
    assert run.asset_selection == {dg.AssetKey(RESEARCH_ASSET)}
    assert (ui.data_root / "outputs" / "daily" / RESEARCH_DAY / f"{RESEARCH_ASSET}.md").is_file()
    calls = [json.loads(line) for line in ui.fake_cli_log.read_text().splitlines()]
    assert [c["prompt_id"] for c in calls] == [RESEARCH_ASSET], "the run should have asked the fake CLI exactly once"


def test_backfill_two_days_of_the_whole_graph(ui: DagsterUI, page, registry):
    # Read the clock now, not when the server started: a midnight in between would leave out today.
    first, last = _backfill_days()
    with ui.shots.on_failure(page, "05-backfill"):
        page.goto(ui.url("/asset-groups"))
        page.get_by_role("button", name="Materialize all…").click()
        dialog = page.get_by_role("dialog")
        # The whole graph: every prompt plus what other modules build on them (publishing).
        title = dialog.get_by_text(re.compile(r"^Launch runs to materialize \d+ assets$"))
        assert int(re.search(r"\d+", title.inner_text()).group()) >= len(registry.prompts)
        partitions = dialog.get_by_role("textbox")
        partitions.fill(f"[{first}...{last}]")
        partitions.press("Enter")
        dialog.get_by_text("2 partitions", exact=True).wait_for()
        ui.shots.take(page, "05-backfill-dialog")
        dialog.get_by_role("button", name="Launch backfill").click()

        _toast_view_link(page, "/runs/b/").click()
        page.wait_for_url(re.compile(r"/runs/b/\w+"))
        backfill_id = page.url.split("/runs/b/")[1].split("?")[0]
        backfill = wait_for_backfill(ui.instance, backfill_id, timeout_s=420)
        page.reload()
        page.get_by_text(f"{first}...{last}").wait_for()
        if backfill.status.value == "COMPLETED_SUCCESS":
            page.get_by_text("Status", exact=True).locator("..").get_by_text("Succeeded", exact=True).wait_for()
        ui.shots.take(page, "06-backfill-done")
        last_row = page.get_by_role("link", name=re.compile(rf"^{registry.prompts[-1].prompt_id}\b")).first
        last_row.scroll_into_view_if_needed()
        ui.shots.take(page, "07-backfill-done-last-rows")

    if backfill.status.value != "COMPLETED_SUCCESS":
        failed = backfill.asset_backfill_data.failed_and_downstream_subset.iterate_asset_partitions()
        pytest.fail(f"backfill {backfill.status.value}; failed or not materialized: {[str(p) for p in failed]}")
    for spec in registry.prompts:
        done = ui.instance.get_materialized_partitions(dg.AssetKey(spec.prompt_id))
        # Assets that only read earlier days start one day later: Dagster targets the days
        # downstream of the selection, and nothing selected feeds their first day.
        wanted = {last} if spec.depends_on and not any(d.is_same_day for d in spec.depends_on) else {first, last}
        assert wanted <= done, f"{spec.prompt_id}: materialized {sorted(done)}, expected {sorted(wanted)}"


def test_latest_materialization_shows_path_tokens_and_preview(ui: DagsterUI, page):
    event = ui.instance.get_latest_materialization_event(dg.AssetKey(REPORT_ASSET))
    assert event is not None, "nothing materialized the report yet: run this module in order"
    materialization = event.asset_materialization
    metadata = materialization.metadata
    with ui.shots.on_failure(page, "08-latest"):
        page.goto(ui.url(f"/assets/{REPORT_ASSET}"))
        latest = page.get_by_text("Latest materialization", exact=True).locator("..")
        latest.get_by_role("link", name=materialization.partition, exact=True).click()
        page.wait_for_url(re.compile(rf"partition={materialization.partition}"))

        def value_row(key: str):
            return page.get_by_role("row").filter(has=page.get_by_text(key, exact=True)).first

        value_row("path").get_by_text(metadata["path"].value, exact=True).wait_for()
        value_row("gemini.input_tokens").get_by_text(str(metadata["gemini.input_tokens"].value), exact=True).wait_for()
        value_row("path").scroll_into_view_if_needed()
        ui.shots.take(page, "08-latest-materialization")

        value_row("preview").get_by_text("[Show Markdown]").click()
        preview = page.get_by_role("dialog")
        preview.get_by_role("heading", name=REPORT_SECTIONS[0]).wait_for()
        ui.shots.take(page, "09-preview")
        preview.get_by_role("button", name="Close").click()

    assert metadata["path"].value == str(ui.data_root / "reports" / f"daily_report_{materialization.partition}.md")
    assert metadata["gemini.input_tokens"].value > 0
