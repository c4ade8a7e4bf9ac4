"""End to end: with secrets in the environment and a failing bucket URL carrying a password, no
secret value reaches the command's output, the instance's files (event logs included), the data
root or the webhook. A real ``dagster asset materialize`` process fails on the bucket; the
failure sensor then summarises that run into the data root and posts it to a real local webhook."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.data_layout import DataLayoutResource
from nh_assets.definitions import build_definitions
from nh_assets.operations.alerts import FailureAlertResource
from nh_assets.operations.sensors import FAILURE_SENSOR_NAME
from nh_assets.registry import load_registry
from nh_assets.settings import REPO_ROOT, load_settings
from nh_assets_tests.support.dagster_server import free_port
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

DAGSTER = str(Path(sys.executable).parent / "dagster")
DAY = "2026-11-20"


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _files(*roots: Path):
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                yield path


def test_no_secret_reaches_output_instance_files_data_root_or_webhook(tmp_path, monkeypatch):
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    dead_port = free_port()
    secrets = {
        "GEMINI_API_KEY": "AIzaSy-e2e-gemini-key-QXJ1",
        "CLOUDFLARE_API_TOKEN": "cf-e2e-token-QXJ2",
        "NH_ALERT_WEBHOOK": f"http://127.0.0.1:{hook.server_address[1]}/hooks/e2e-webhook-path-QXJ3",
        # A raw "/", "#" and "?" in the password: the standard URL parser misreads this userinfo.
        "NH_RATE_LIMIT_POSTGRES_URL": f"postgresql://nh:pg/p#ss?w0rd-QXJ4@127.0.0.1:{dead_port}/nh",
        "NH_POSTGRES_URL": f"postgresql+psycopg2://nh:storage-pw-QXJ5@127.0.0.1:{dead_port}/nh",
        "NH_CELERY_BROKER": "redis://:broker-pw-QXJ6@127.0.0.1:1/0",
    }
    # Distinctive tails (not digits or hex), so a fragment found in a binary instance file is a leak and
    # not a timestamp or a run id that happens to contain it.
    fragments = ["key-QXJ1", "token-QXJ2", "e2e-webhook-path", "w0rd-QXJ4", "pg/p#ss", "storage-pw", "broker-pw"]
    env = {**os.environ, **pipeline_env(tmp_path, PYTHONWARNINGS="ignore"), **secrets}
    try:
        done = subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "nh_assets", "--select", "ai_ecosystem_watch", "--partition", DAY],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode != 0
        output = done.stdout + done.stderr
        assert "cannot open the shared Gemini rate-limit bucket at postgresql://nh:***@127.0.0.1" in output

        # The failure sensor, as the daemon would run it, in a process holding the same secrets.
        for name, value in secrets.items():
            monkeypatch.setenv(name, value)
        home = Path(env["DAGSTER_HOME"])
        defs = build_definitions(load_settings(env), load_registry(REPO_ROOT / "registry" / "prompts.tsv"))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            context = dg.build_run_status_sensor_context(
                sensor_name=FAILURE_SENSOR_NAME,
                dagster_event=failure.dagster_event,
                dagster_instance=instance,
                dagster_run=run,
                resources={
                    "alerts": FailureAlertResource(webhook_url=secrets["NH_ALERT_WEBHOOK"]),
                    "layout": DataLayoutResource(root=env["NH_DATA_ROOT"]),
                },
            )
            defs.resolve_sensor_def(FAILURE_SENSOR_NAME)(context)
    finally:
        hook.shutdown()
        hook.server_close()

    (summary,) = (Path(env["NH_DATA_ROOT"]) / "logs" / "failures").glob("*.md")
    assert "rate_limit_store" in summary.read_text() and len(_Hook.bodies) == 1
    places = {"command output": output.encode(), "webhook body": _Hook.bodies[0]}
    places.update({str(p): p.read_bytes() for p in _files(home, Path(env["NH_DATA_ROOT"]))})
    leaks = [(where, f) for where, data in places.items() for f in [*secrets.values(), *fragments] if f.encode() in data]
    assert leaks == [] and len(places) > 5
