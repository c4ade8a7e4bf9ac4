"""Resolving grounding redirects within bounds, against a small HTTP server on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nh_assets.gemini.source_links import Bounds, is_grounding_redirect, proxies_from, resolve_all

pytestmark = pytest.mark.fast

BIG = 64 << 20  # far more than any socket buffer: a client that reads it all gets it all


class _Web:
    def __init__(self) -> None:
        self.sent_big = threading.Event()
        self.big_aborted = threading.Event()


def _handler(web: _Web):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _redirect(self, where: str) -> None:
            self.send_response(302)
            self.send_header("Location", where)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path.startswith("/grounding-api-redirect/hop"):
                n = int(path.rsplit("hop", 1)[1])
                self._redirect(f"/grounding-api-redirect/hop{n - 1}" if n > 0 else "/article")
            elif path == "/grounding-api-redirect/gone":
                self.send_response(404)
                self.send_header("Content-Length", "9")
                self.end_headers()
                self.wfile.write(b"Not Found")
            elif path == "/grounding-api-redirect/slow":
                time.sleep(3)
                self._redirect("/article")
            elif path == "/big":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(BIG))
                self.end_headers()
                block = b"<title>Big page</title>" + b"x" * 65000
                try:
                    sent = 0
                    while sent < BIG:
                        self.wfile.write(block[: BIG - sent])
                        sent += len(block)
                    web.sent_big.set()
                except OSError:
                    web.big_aborted.set()
            elif path == "/article":
                body = b"<html><head><title>An article &amp; more</title></head><body>text</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

    return Handler


@pytest.fixture()
def web() -> Iterator[tuple[str, _Web]]:
    state = _Web()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_a_redirect_chain_ends_at_the_article_and_a_404_is_dead(web) -> None:
    base, _ = web
    found = resolve_all([f"{base}/grounding-api-redirect/hop2", f"{base}/grounding-api-redirect/gone"], env={})
    chain = found[f"{base}/grounding-api-redirect/hop2"]
    assert (chain.final_url, chain.status, chain.page_title) == (f"{base}/article", 200, "An article & more")
    assert not chain.dead and chain.resolved_at.endswith("Z")
    gone = found[f"{base}/grounding-api-redirect/gone"]
    assert gone.dead and gone.status == 404 and gone.error == "HTTP 404"


def test_more_redirects_than_the_limit_is_dead(web) -> None:
    base, _ = web
    found = resolve_all([f"{base}/grounding-api-redirect/hop6"], env={}, bounds=Bounds(max_redirects=3))
    assert found[f"{base}/grounding-api-redirect/hop6"].error == "more than 3 redirects"


def test_a_slow_server_is_dead_by_the_per_link_bound_and_does_not_hold_the_others(web) -> None:
    base, _ = web
    slow, fast = f"{base}/grounding-api-redirect/slow", f"{base}/grounding-api-redirect/hop0"
    found = resolve_all([slow, fast], env={}, bounds=Bounds(per_link_s=0.5, total_s=5))
    assert found[slow].dead and found[slow].error == "timeout"
    assert found[fast].final_url == f"{base}/article"


def test_the_batch_bound_ends_links_that_have_not_finished(web) -> None:
    base, _ = web
    slow = [f"{base}/grounding-api-redirect/slow?{i}" for i in range(3)]
    found = resolve_all(slow, env={}, bounds=Bounds(per_link_s=10, total_s=0.5, workers=1))
    assert all(r.dead and r.error.startswith("timeout") for r in found.values())


def test_an_oversize_page_is_read_only_up_to_the_cap(web) -> None:
    base, state = web
    found = resolve_all([f"{base}/big"], env={}, bounds=Bounds(max_bytes=32 * 1024))[f"{base}/big"]
    assert found.final_url == f"{base}/big" and found.page_title == "Big page"
    assert found.bytes_read == 32 * 1024
    assert state.big_aborted.wait(10), "the server could send the whole body: the client read past its cap"
    assert not state.sent_big.is_set()


def test_proxy_settings_come_from_the_given_environment_and_no_proxy_is_honoured(web) -> None:
    base, _ = web
    env = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "example.org"}
    assert proxies_from(env) == {"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9", "no": "example.org"}
    # Through the (dead) proxy the link cannot be reached; exempted by NO_PROXY it resolves.
    through = resolve_all([f"{base}/article"], env=env)[f"{base}/article"]
    assert through.dead and through.error.startswith("unreachable")
    direct = resolve_all([f"{base}/article"], env={**env, "NO_PROXY": "127.0.0.1"})[f"{base}/article"]
    assert direct.final_url == f"{base}/article"


def test_grounding_redirects_are_recognised_by_their_path() -> None:
    assert is_grounding_redirect("https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQE")
    assert not is_grounding_redirect("https://www.reuters.com/technology/")
