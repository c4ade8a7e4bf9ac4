"""A stdlib server served from a thread for the length of a block: the webhook receiver and the
closed proxy of the login test stand on 127.0.0.1 this way, and stop when the block ends."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    """Yields the server's port; shuts it down and closes its socket afterwards."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
