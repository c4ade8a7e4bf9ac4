"""The old ``nh`` runner, driven for one day with this project's fake one-shot CLI, so that a
benchmark can print it beside the Dagster graph (``benchmarks.footprint``).

The old runner is the pre-Dagster orchestrator of the public repository hopchouinard/NeuroHelix:
the Typer CLI ``nh`` (``orchestrator/``), whose ``nh run`` reads a TSV registry of 22 prompts and
runs its waves (search, aggregator, tagger, render, export) one after the other, each through a
``ThreadPoolExecutor`` sized by the wave's concurrency classes (sequential 1, low 2, medium 4,
high 8; a wave holding a sequential prompt gets one worker), every call behind a token bucket
(50/min, bursts of 10). Its code is not this project's and is never committed here: the benchmark
is given a checkout, extracted from a mirror of that repository (the one-liner is in
``benchmarks.footprint``), whose ``orchestrator/`` holds the old packages and whose optional
``site-packages/`` holds what this venv lacks (typer 0.20.0, from PyPI).

How it runs, with no change to the old code:

- ``nh run --date DAY`` exactly as its console script (``nh = "nh_cli.main:app"``) runs it, with
  this venv's Python and ``PYTHONPATH`` = the checkout's ``orchestrator/`` and ``site-packages/``;
- from a fresh copy of ``orchestrator/`` per run: the runner skips a prompt whose output exists,
  and writes ``data/``, ``logs/`` and ``var/`` beside the folder it runs from;
- ``gemini`` on ``PATH`` is the fake one-shot CLI (``install_fake``) answering after L. The old
  runner calls ``gemini --model M PROMPT`` with the prompt positional; the fake reads only ``-p``,
  so it answers an empty prompt: it still starts, waits L, sends its one request to the fake
  Gemini API and prints its JSON answer, which the runner writes as the prompt's output. Every
  prompt's call costs the same as for the graph's fake CLI, without the old runner's prompt text.

Measured: the run's wall time (the run manifest's ``started_at`` to ``ended_at``: registry loaded,
lock taken, to the last wave's end) and the whole command's, the peak PSS and RSS of its process
tree (``TreeMemory``: the runner and its CLIs), the calls (the fake CLI's log), how many ran at
once, and the gaps between consecutive calls: the runner runs one call at a time, so a gap is its
per-prompt overhead (the previous output written, the ledger, the token bucket, the next CLI's
start-up). It has no step events, so no phases.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.machine import TreeMemory, load_average
from benchmarks.step_breakdown import percentile
from nh_assets_tests.support.fakes import install_fake, shared_fake_api

# The ``nh`` console script, run by this venv's interpreter: ``nh run --date DAY``.
NH = "import sys; from nh_cli.main import app; sys.argv[0] = 'nh'; sys.exit(app())"


class OldRunnerUnavailable(Exception):
    """The checkout cannot be run here; the message says why and what would fix it."""


def _python_path(checkout: Path) -> str:
    return os.pathsep.join(str(p) for p in (checkout / "orchestrator", checkout / "site-packages") if p.is_dir())


def check(checkout: Path) -> None:
    """Raises ``OldRunnerUnavailable`` unless the checkout's ``nh`` imports with this venv (and the
    checkout's ``site-packages``), without running anything."""
    if not (checkout / "orchestrator" / "nh_cli" / "main.py").is_file():
        raise OldRunnerUnavailable(f"{checkout} holds no orchestrator/nh_cli/main.py (extract the repository's orchestrator/ there)")
    probe = subprocess.run(
        [sys.executable, "-c", "import nh_cli.main"], cwd=checkout / "orchestrator", capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": _python_path(checkout), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["(no error output)"])[-1]
        hint = ""
        if "No module named" in last:
            hint = (f"; this venv lacks it: put it in {checkout / 'site-packages'} "
                    "(for typer: pip install --target <checkout>/site-packages --no-deps typer==0.20.0)")
        raise OldRunnerUnavailable(f"the old nh does not import: {last}{hint}")


def _calls_at_once(calls: list[dict]) -> int:
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def one_day(checkout: Path, latency: float, day: str) -> dict:
    """``nh run --date day`` from a fresh copy of the checkout, the fake CLI answering after
    ``latency``; raises ``OldRunnerUnavailable`` if it cannot run here, SystemExit if the run fails."""
    check(checkout)
    with tempfile.TemporaryDirectory(prefix="nh-bench-old-") as tmp:
        base = Path(tmp)
        shutil.copytree(
            checkout / "orchestrator", base / "orchestrator",
            ignore=shutil.ignore_patterns("__pycache__", "tests", ".coverage"),
        )
        fake = install_fake(base / "bin" / "gemini")
        log = base / "calls.jsonl"
        env = {
            # This project's settings mean nothing to the old runner; they are left out.
            **{k: v for k, v in os.environ.items() if not k.startswith(("NH_", "DAGSTER_"))},
            "PATH": f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": _python_path(checkout),
            "PYTHONDONTWRITEBYTECODE": "1",
            "FAKE_GEMINI_LATENCY": str(latency),
            "FAKE_GEMINI_LOG": str(log),
            "GOOGLE_GEMINI_BASE_URL": shared_fake_api().base_url,
        }
        load_before = load_average()
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", NH, "run", "--date", day], cwd=base / "orchestrator", env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        memory = TreeMemory(proc.pid, root_kind="nh runner")
        memory.start()
        output, _ = proc.communicate()
        command_wall = time.monotonic() - started
        peak = memory.stop()
        load_after = load_average()
        manifest_path = base / "data" / "manifests" / f"{day}.json"
        if proc.returncode != 0 or not manifest_path.is_file():
            raise SystemExit(f"bench: the old nh run failed (exit {proc.returncode}):\n{output[-3000:]}")
        manifest = json.loads(manifest_path.read_text())
        run_start, run_end = (datetime.fromisoformat(manifest[k]) for k in ("started_at", "ended_at"))
        calls = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda c: c["start"])
        # The manifest's times are naive local ones; the calls' are epoch seconds.
        previous_end, gaps = run_start.timestamp(), []
        for call in calls:
            gaps.append(max(0.0, call["start"] - previous_end))
            previous_end = max(previous_end, call["end"])
        return {
            "run_wall_s": (run_end - run_start).total_seconds(),
            "command_wall_s": command_wall,
            "completed": len(manifest["completed_prompts"]),
            "failed": len(manifest["failed_prompts"]),
            "calls": len(calls),
            "calls_at_once": _calls_at_once(calls),
            "overhead_median_s": statistics.median(gaps) if gaps else float("nan"),
            "overhead_p95_s": percentile(gaps, 0.95) if gaps else float("nan"),
            "peak_rss_mb": peak / 2**20,
            "memory": memory,
            "load_before": load_before,
            "load_after": load_after,
        }
