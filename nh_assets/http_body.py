"""Reading an HTTP request's body in a ``BaseHTTPRequestHandler``, chunked or not.

The Gemini CLI (node's fetch) sends some request bodies chunked and others with a length; both
the rate gate and the demo API read what it sends, and the standard library's handler reads
neither form for them.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        data = b""
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0] or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return data
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
