"""``python -m nh_assets.demo``: serve the fake Gemini API on 127.0.0.1 for demo mode.

``scripts/dev.sh --demo`` starts it beside ``dagster dev`` and points the pipeline at it
(``NH_DEMO=1``, ``NH_GEMINI_API_URL``); the Gemini resource only ever sees that base URL.
It stops on SIGTERM or SIGINT even when its parent ignores them (a child inherits an ignored
signal: nohup, some supervisors and test workers start it so), so a stopped demo never lingers
holding its port.
"""

from __future__ import annotations

import argparse
import signal
import threading

from nh_assets.demo.api import FakeGeminiAPI

DEFAULT_PORT = 8765


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nh_assets.demo",
        description="Serve the NeuroHelix fake Gemini API on 127.0.0.1 (demo mode).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0 = random)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to sleep before each answer")
    parser.add_argument("--log", default=None, help="append one JSON line per request to this file")
    parser.add_argument(
        "--redirect-ttl", type=float, default=None,
        help="seconds a grounding redirect link answers before it expires (404), as Google's do; default: never",
    )
    args = parser.parse_args(argv)
    try:
        api = FakeGeminiAPI(latency_s=args.latency, log_path=args.log, port=args.port, redirect_ttl_s=args.redirect_ttl).start()
    except OSError as exc:
        parser.exit(2, f"demo: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc} — pick another --port\n")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(api.base_url, flush=True)
    try:
        stop.wait()
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
