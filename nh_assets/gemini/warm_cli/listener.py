"""The warm CLI service's socket: one JSON request and one JSON answer per connection.

A step asks and waits on its connection; the connection is also how the service learns that the
step is gone (killed, or its run terminated: ``cancellation`` shuts the socket), so each request
has a watcher that marks it abandoned when the step's end closes, and the prompt is cancelled.
Only the same user may ask (``endpoint.same_user``), and a bug in serving answers "unavailable"
(the step then calls one-shot) instead of ending the service.
"""

from __future__ import annotations

import json
import os
import socketserver
import threading
import traceback
from collections.abc import Callable
from typing import Protocol

from nh_assets.gemini.warm_cli import endpoint


class Served(Protocol):
    def serve(self, request: dict, abandoned: threading.Event) -> dict: ...

    def cli_pids(self) -> list[int]: ...


def handler_for(service: Served, log: Callable[[str], None]) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            if not endpoint.same_user(self.connection):
                return
            line = self.rfile.readline()
            try:
                request = json.loads(line)
            except ValueError:
                return
            if request.get("op") == "ping":
                reply = {"ok": True, "pid": os.getpid(), "processes": service.cli_pids()}
            else:
                abandoned = threading.Event()
                threading.Thread(target=self._watch, args=(abandoned,), daemon=True).start()
                try:
                    reply = service.serve(request, abandoned)
                except Exception as exc:  # a bug here must not end the service: the step falls back
                    log("".join(traceback.format_exception_only(type(exc), exc)).strip())
                    reply = {"ok": False, "unavailable": f"warm CLI service error: {type(exc).__name__}"}
            try:
                self.wfile.write((json.dumps(reply) + "\n").encode())
            except OSError:
                pass

        def _watch(self, abandoned: threading.Event) -> None:
            """The step closes its end when it dies: the prompt is then cancelled."""
            try:
                while self.connection.recv(1):
                    pass
            except OSError:
                pass
            abandoned.set()

    return Handler


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves a socket already bound (``endpoint.bind``, which gets around ``sun_path``'s length)."""

    daemon_threads = True

    def __init__(self, sock, handler):
        socketserver.BaseServer.__init__(self, "", handler)
        self.socket = sock
