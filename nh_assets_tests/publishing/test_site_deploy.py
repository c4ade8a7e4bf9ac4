"""site_deployment through Dagster with the fake wrangler: upload, verification, skip, failures, message.

The site is built by the real ``site`` asset from day copies written under tmp_path; the fake
wrangler records which files it was asked to upload and answers ``pages deployment list --json``
from the deployments it made. A loopback HTTP server stands in for the chat webhook.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.definitions import build_definitions
from nh_assets.publishing.site.day_input import write_day
from nh_assets.publishing.pages_wrangler import parse_deployment_list
from nh_assets.publishing.wrangler import classify_deploy_error, parse_deploy_output
from nh_assets.settings import load_settings
from nh_assets_tests.support.fakes import FAKE_WRANGLER, install_fake
from nh_assets_tests.support.site_days import days_back, synthetic_day

pytestmark = pytest.mark.dagster

TOKEN = "cf-test-token-never-logged-4242"
DAYS = days_back(date(2026, 11, 20), 3)
KEYS = [dg.AssetKey("site"), dg.AssetKey("site_deployment")]


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch):
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NH_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    yield _Webhook.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def wrangler_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "fake_wrangler.jsonl"
    monkeypatch.setenv("FAKE_WRANGLER_LOG", str(log))
    return log


def _run(settings_env, registry, instance, tmp_path, **env):
    cli = install_fake(tmp_path / "bin" / "wrangler", FAKE_WRANGLER)
    # Settings read the environment at load: the token a test exported counts, as for an operator.
    settings = load_settings({**os.environ, **settings_env, "NH_WRANGLER_CLI": str(cli), **env})
    for day in DAYS:
        write_day(settings.data_root / "site_src", synthetic_day(day))
    defs = build_definitions(settings, registry)
    job = defs.resolve_implicit_job_def_def_for_assets(KEYS)
    result = job.execute_in_process(instance=instance, asset_selection=KEYS, raise_on_error=False)
    return settings, result


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.user_failure_data.description


def test_deploys_the_built_site_verifies_it_and_announces_the_day(
    settings_env, registry, instance, tmp_path, wrangler_log, webhook, monkeypatch
):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    settings, result = _run(settings_env, registry, instance, tmp_path)
    assert result.success
    deploy, listing = _calls(wrangler_log)
    build = settings.site_dir.resolve()
    assert deploy["argv"] == ["pages", "deploy", str(build), "--project-name", "neurohelix", "--branch", "production"]
    uploaded = {path for path, _size in deploy["uploads"]}
    assert {f"reports/{d}/index.html" for d in DAYS} | {
        "index.html",
        "feed.xml",
        "404.html",
        "pagefind/pagefind.js",
    } <= uploaded
    assert deploy["token_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert listing["argv"] == ["pages", "deployment", "list", "--project-name", "neurohelix", "--json"]

    (materialization,) = result.asset_materializations_for_node("site_deployment")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    url = meta["cloudflare.deployment_url"]
    assert url.endswith(".neurohelix.pages.dev") and meta["cloudflare.verified"] is True
    assert meta["nh.site.file_count"] == len(uploaded) and meta["nh.site.bundle_bytes"] == sum(
        s for _p, s in deploy["uploads"]
    )
    summary = json.loads((settings.data_root / "logs/publishing/latest.json").read_text())
    assert summary["status"] == "deployed" and summary["url"] == url and summary["verified"] is True
    assert summary["file_count"] == len(uploaded) and summary["build_duration_s"] > 0

    (message,) = webhook
    assert f"NeuroHelix Daily Report — {DAYS[-1]}" in message["text"] and "published" in message["text"]
    assert f"{settings.site_url}/reports/{DAYS[-1]}/" in message["text"] and "+2 other days" in message["text"]
    everything = "\n".join(str(e) for e in instance.all_logs(result.run_id)) + wrangler_log.read_text()
    assert TOKEN not in everything and TOKEN not in json.dumps(summary)


def test_a_deployment_missing_from_the_list_fails_with_cause_and_fix(
    settings_env, registry, instance, tmp_path, wrangler_log, webhook, monkeypatch
):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("FAKE_WRANGLER_SCENARIO", "unlisted")
    settings, result = _run(settings_env, registry, instance, tmp_path)
    assert not result.success
    message = _failure(result)
    assert "\n" not in message
    assert "is not in `wrangler pages deployment list --project-name neurohelix`" in message
    assert "fix: check project neurohelix in the Cloudflare dashboard" in message
    assert result.asset_materializations_for_node("site_deployment") == []
    assert webhook == [], "an unverified deployment is not announced"
    assert json.loads((settings.data_root / "logs/publishing/latest.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("project_not_found", "wrangler pages project create neurohelix"),
        ("auth", "Cloudflare Pages › Edit"),
        ("no_url", "cannot be verified"),
    ],
)
def test_a_failed_deploy_fails_in_one_line_without_retrying(
    settings_env, registry, instance, tmp_path, wrangler_log, monkeypatch, scenario, expected
):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("FAKE_WRANGLER_SCENARIO", scenario)
    _, result = _run(settings_env, registry, instance, tmp_path)
    message = _failure(result)
    assert "\n" not in message and expected in message and "fix:" in message
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def test_without_a_token_the_site_is_built_the_deploy_skipped_and_the_day_announced(
    settings_env, registry, instance, tmp_path, wrangler_log, webhook, monkeypatch
):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    settings, result = _run(settings_env, registry, instance, tmp_path)
    assert result.success
    assert (settings.site_dir / "reports" / DAYS[-1] / "index.html").is_file()
    assert result.asset_materializations_for_node("site_deployment") == []
    (observation,) = result.asset_observations_for_node("site_deployment")
    assert observation.metadata["cloudflare.status"].value == "skipped"
    assert "CLOUDFLARE_API_TOKEN" in observation.description
    assert _calls(wrangler_log) == []
    (message,) = webhook
    assert "built locally" in message["text"] and f"file://{settings.site_dir}/reports/{DAYS[-1]}/" in message["text"]
    assert json.loads((settings.data_root / "logs/publishing/latest.json").read_text())["status"] == "skipped"
    # Nothing changed since: the next deployment run says nothing.
    job = build_definitions(settings, registry).resolve_implicit_job_def_def_for_assets(KEYS)
    assert job.execute_in_process(instance=instance, asset_selection=KEYS[1:]).success
    assert len(webhook) == 1


def test_the_deployment_list_parser_reads_wrangler_4_json():
    row = '{"Id": "0b1901b2-aaaa", "Deployment": "https://0b1901b2.nh.pages.dev", "Status": "2 minutes ago"}'
    output = f"warning: something\n[\n  {row}\n]\n"
    assert parse_deployment_list(output)[0]["Id"] == "0b1901b2-aaaa"
    with pytest.raises(ValueError):
        parse_deployment_list("✘ [ERROR] not json")


def test_wrangler_deploy_output_parsing():
    output = (
        "✨ Success! Uploaded 5 files (0.9 sec)\n"
        "✨ Deployment complete! Take a peek over at https://0b1901b2.neurohelix-1dq.pages.dev\n"
        "✨ Deployment alias URL: https://preview.neurohelix-1dq.pages.dev\n"
    )
    assert parse_deploy_output(output) == (
        "https://0b1901b2.neurohelix-1dq.pages.dev",
        "0b1901b2",
        "https://preview.neurohelix-1dq.pages.dev",
        5,
    )
    assert parse_deploy_output("✨ Deployment complete!")[:2] == (None, None)
    network = classify_deploy_error(1, "✘ [ERROR] fetch failed", project="neurohelix")
    assert network.retryable and "fetch failed" in network.cause
