"""A chat webhook on 127.0.0.1 that keeps what it is sent: where alert tests and benchmarks point
``NH_ALERT_WEBHOOK`` (or ``FailureAlertResource(webhook_url=…)``) to count and read the posts."""

from __future__ import annotations

import contextlib
import http.server
import json
from collections.abc import Iterator

from nh_assets_tests.support.loopback import serving


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    """Yields the webhook's URL and the list its posts (JSON bodies) are appended to."""
    posts: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)) as port:
        yield f"http://127.0.0.1:{port}/hook", posts
