"""A private, real Redis server (Debian's ``redis-server``) on a free loopback port: the Celery
broker of the multi-machine deployment test. Nothing is persisted; it is stopped on exit."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from typing import Iterator

from nh_assets_tests.support.dagster_server import free_port


class RedisUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """Yields the server's URL (database 0)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(binary):
        raise RedisUnavailable(
            "redis-server not found; run `bash scripts/install_test_services.sh` (apt-get install redis-server)"
        )
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RedisUnavailable(f"redis-server did not start on port {port} (exit {proc.poll()})")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
