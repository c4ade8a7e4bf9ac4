"""The morning brief through the REAL @google/gemini-cli, from the model's answer to the reader's screens.

A day is run with the fast fake CLI; then the operator's command materializes ``morning_brief``
with the real CLI against a model that writes four sentences until told its answer was rejected
(``sloppy_model``). The contract rejects the four, the re-ask gets three, and the ``site`` and
``site_deployment`` assets (no Cloudflare token: built locally and announced) put the brief at the
top of the day page, on the index card, in the feed entry and in the report-ready message, which
a loopback webhook receives.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.formats.brief import brief_sentences
from nh_assets.settings import load_settings
from nh_assets_tests.support.fakes import shared_fake_api
from nh_assets_tests.support.sloppy_model import ONE_MORE_THING, SloppyModel, prompt_id_of

pytestmark = pytest.mark.real_cli

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY = "2026-11-21"


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        type(self).received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def wordy_api(tmp_path):
    api = SloppyModel(always_fails="-", always_refuses="-", log_path=tmp_path / "requests.jsonl").start()
    try:
        yield api
    finally:
        api.stop()


def _materialize(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", *args],
        env=env, capture_output=True, text=True, timeout=600, cwd=cwd,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_brief_is_reasked_until_three_sentences_and_opens_every_screen(
    tmp_path, dagster_home, fake_cli, registry, gemini_cli_path, wordy_api, gemini_env_factory, webhook
):
    hook_url, messages = webhook
    base = {
        "DAGSTER_HOME": str(dagster_home), "NH_DATA_ROOT": str(tmp_path / "data"), "NH_GEMINI_CLI": str(fake_cli),
        "NH_PARTITION_START": "2026-11-01", "NH_TIMEZONE": "UTC", "NH_ALERT_WEBHOOK": hook_url,
        "NH_GEMINI_API_URL": shared_fake_api().base_url,
    }
    defs = build_definitions(load_settings(base), registry)
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        assert defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=DAY, instance=instance).success

    env = gemini_env_factory(wordy_api.base_url)
    env.update(base, NH_GEMINI_CLI=gemini_cli_path, TMPDIR=tempfile.mkdtemp(prefix="nh-"))
    del env["NH_GEMINI_API_URL"]  # the CLI's own GOOGLE_GEMINI_BASE_URL names the endpoint
    env.pop("CLOUDFLARE_API_TOKEN", None)
    _materialize(env, tmp_path, "morning_brief", "--partition", DAY)

    data = Path(base["NH_DATA_ROOT"])
    brief = brief_sentences((data / f"briefs/brief_{DAY}.txt").read_text())
    assert len(brief) == 3 and brief[0].startswith("The day's main theme") and ONE_MORE_THING not in " ".join(brief)
    asked = [r["prompt"] for r in wordy_api.requests if prompt_id_of(r.get("prompt") or "") == "morning_brief"]
    assert len(asked) == 2 and "YOUR PREVIOUS ANSWER WAS REJECTED" in asked[1] and "4 sentences" in asked[1]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("morning_brief"), asset_partitions=[DAY]), limit=1
        ).records[0]
        log = record.asset_materialization.metadata["nh.answer_log"].value
    assert [a["outcome"] for a in log] == ["rejected", "accepted"]
    assert log[0]["complaints"][0].startswith("the answer has 4 sentences — write exactly three")

    _materialize(env, tmp_path, "site,site_deployment")
    text = " ".join(brief)
    site = data / "site"
    day_page = html.unescape((site / "reports" / DAY / "index.html").read_text())
    assert day_page.index(text) < day_page.index('class="lede"')  # it opens the page
    card = html.unescape((site / "index.html").read_text()).split('<li class="card day-card">')[1]
    assert text in card
    atom = {"a": "http://www.w3.org/2005/Atom"}
    entry = ET.parse(site / "feed.xml").getroot().find("a:entry", atom)
    assert entry.find("a:summary", atom).text.startswith(text)
    (message,) = messages
    assert message["text"].splitlines()[1] == text
