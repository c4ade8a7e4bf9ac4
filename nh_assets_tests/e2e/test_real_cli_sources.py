"""Sources that last, through the REAL @google/gemini-cli against the fake Gemini API.

The fake answers searches as Google does: each grounding chunk names its source by a
``/grounding-api-redirect/<token>`` link that 302s to an article page, and the test expires those
links after the day has run. The model (``inventive_model``) cites a URL no search returned in one
note and in the report, and one research prompt's search fails. Run as the operator runs a day:
``dagster asset materialize``, then the ``site`` asset.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter  # the 1.13 storage API takes it; not re-exported

from nh_assets.prompts.sources import GROUNDED_CHECK, UNVERIFIED, read_sources
from nh_assets.settings import load_settings
from nh_assets_tests.support.inventive_model import MADE_UP_URL, InventiveModel
from nh_assets_tests.support.site_links import status_now

pytestmark = pytest.mark.real_cli

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY = "2026-11-22"
GROUNDED, INVENTS, SEARCH_FAILS = "ai_ecosystem_watch", "tech_regulation_pulse", "ethics_alignment"
PUBLISHING = ("daily_aggregator", "tag_extractor", "dashboard_renderer", "site_payload_exporter")


@pytest.fixture
def model(tmp_path):
    api = InventiveModel(
        invents_for=(INVENTS, "daily_aggregator"),
        failing_search="AI safety and governance researcher",  # the ethics_alignment row's query
        log_path=tmp_path / "requests.jsonl",
    ).start()
    try:
        yield api
    finally:
        api.stop()


def _materialize(env: dict[str, str], cwd: Path, selection: str, *partition: str) -> None:
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", selection, *partition],
        env=env, capture_output=True, text=True, timeout=900, cwd=cwd,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _check(instance: dg.DagsterInstance, asset: str):
    found = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(asset), GROUNDED_CHECK)], partition_filter=PartitionKeyFilter(key=DAY)
    )
    (record,) = found.values()
    return record.event.dagster_event.asset_check_evaluation_data


def test_published_sources_outlive_their_grounding_redirects(tmp_path, dagster_home, gemini_cli_path, model, gemini_env_factory):
    env = gemini_env_factory(model.base_url)
    env.update(
        DAGSTER_HOME=str(dagster_home), NH_DATA_ROOT=str(tmp_path / "data"), NH_GEMINI_CLI=gemini_cli_path,
        NH_PARTITION_START="2026-11-01", NH_TIMEZONE="UTC", NH_GEMINI_TRANSPORT="acp",
        # The forkserver's socket lives in TMPDIR; pytest's deep tmp paths exceed AF_UNIX's 108 bytes.
        TMPDIR=tempfile.mkdtemp(prefix="nh-"),
    )
    env.pop("NH_GEMINI_API_URL", None)  # the CLI's own GOOGLE_GEMINI_BASE_URL names the endpoint
    _materialize(env, tmp_path, ",".join((GROUNDED, INVENTS, SEARCH_FAILS, *PUBLISHING)), "--partition", DAY)
    data = Path(env["NH_DATA_ROOT"])
    articles = f"{model.base_url}/articles/"

    notes = {pid: (data / f"outputs/daily/{DAY}/{pid}.md").read_text() for pid in (GROUNDED, INVENTS, SEARCH_FAILS)}
    found = {pid: read_sources(text) for pid, text in notes.items()}
    for pid in (GROUNDED, INVENTS):
        # Three sources per search, each with the article it led to, its domain and when.
        assert len(found[pid].grounded) == 3, pid
        for source in found[pid].grounded:
            assert source.url.startswith(articles) and source.domain == "127.0.0.1", source
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", source.resolved_at), source
        assert found[pid].search_errors == [] and found[pid].dead == []
        assert "grounding-api-redirect" not in notes[pid], pid
    assert found[GROUNDED].unverified == []
    assert found[INVENTS].unverified == [MADE_UP_URL]
    assert f"({MADE_UP_URL}) {UNVERIFIED}" in notes[INVENTS]
    # The failed search reached the model as a tool error; it answered anyway, without sources.
    assert found[SEARCH_FAILS].grounded == []
    assert "Error during web search" in found[SEARCH_FAILS].search_errors[0]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert _check(instance, GROUNDED).passed and _check(instance, INVENTS).passed
        failed = _check(instance, SEARCH_FAILS)
        assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN
        assert "search(es) failed" in failed.description
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(INVENTS), asset_partitions=[DAY]), limit=1
        ).records[0]
        meta = record.asset_materialization.metadata
        assert meta["nh.sources_grounded"].value == 3 and meta["nh.sources_unverified"].value == 1
        assert [s["url"] for s in meta["nh.sources"].value] == [s.url for s in found[INVENTS].grounded]

    # The redirects die, as Google's do; the site is built after that.
    model.web.expire_redirects()
    redirects = [c for c in re.findall(r"\((http://[^)\s]+/grounding-api-redirect/[^)\s]+)\)", json.dumps(model.requests))]
    assert redirects and all(status_now(u) == 404 for u in set(redirects))
    _materialize(env, tmp_path, "site")

    site = load_settings(env).site_dir
    page = (site / "reports" / DAY / "index.html").read_text()
    links = set(re.findall(r'href="(https?://[^"]+)"', page))
    assert links == {s.url for pid in (GROUNDED, INVENTS) for s in found[pid].grounded}
    assert all(status_now(url) == 200 for url in links)
    assert "grounding-api-redirect" not in page
    assert MADE_UP_URL not in page and "unverified" in page
    kpis = json.loads((data / "site_src" / f"{DAY}.json").read_text())["kpis"]
    assert (kpis["sources_grounded"], kpis["sources_dead"]) == (6, 0)
    assert kpis["sources_unverified"] == 1  # the made-up URL, cited in a note and the report
