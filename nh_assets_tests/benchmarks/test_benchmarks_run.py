"""Every benchmark runs as its docs give it, with tiny parameters, so none can rot unnoticed.

Each one is a subprocess of ``python -m benchmarks.<name>`` from the repo root; the test asserts that it
exits 0 and that its figures are printed and read as numbers. No speed is asserted: the figures are
the benchmark's to print, not the suite's to judge.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nh_assets.settings import REPO_ROOT

NUMBER = r"(\d+(?:\.\d+)?)"


@pytest.fixture
def two_prompt_registry(tmp_path: Path) -> Path:
    """The shipped registry cut to its comments, header and first two rows (research prompts with no
    dependencies): a whole day of two steps, so a benchmark's day takes seconds, not minutes."""
    lines = (REPO_ROOT / "registry" / "prompts.tsv").read_text(encoding="utf-8").splitlines()
    comments = [line for line in lines if line.startswith("#")]
    table = [line for line in lines if line.strip() and not line.startswith("#")]
    path = tmp_path / "prompts.tsv"
    path.write_text("\n".join(comments + table[:3]) + "\n", encoding="utf-8")
    return path


def _bench(name: str, *args: str, registry: Path | None = None) -> str:
    # The benchmark's temporary files go to a short directory of their own, not under tmp_path: the
    # forkserver's and Chromium's sockets live in TMPDIR, and a Unix socket path holds 107 bytes,
    # which a pytest-xdist worker's tmp_path (…/popen-gw1/test_the_…/) can exceed.
    with tempfile.TemporaryDirectory(prefix="nhb-") as scratch:
        env = {**os.environ, "TMPDIR": scratch}
        if registry is not None:
            env["NH_REGISTRY"] = str(registry)
        result = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _figure(pattern: str, output: str) -> list[float]:
    found = re.search(pattern, output)
    assert found, f"no line matches {pattern!r} in:\n{output}"
    return [float(group) for group in found.groups()]


@pytest.mark.dagster
def test_the_day_benchmark_prints_its_overheads_bound_and_backfill(two_prompt_registry):
    out = _bench(
        "day", "--parts", "one,backfill", "--latency", "0.1", "--days", "1", "--rate", "60",
        "--backfill-latency", "0.1", registry=two_prompt_registry,
    )
    assert _figure(r"one partition, L = 0\.1 s, (\d+) steps", out) == [2.0]
    median, p95 = _figure(rf"per-step overhead\s+median {NUMBER} s, p95 {NUMBER} s", out)
    assert 0 <= median <= p95
    _figure(rf"bound {NUMBER} s; wall / bound = {NUMBER}", out)
    phases = [
        "process start", "plan + resources", "before the CLI", "CLI calls", "answer -> artifact",
        "checks + events", "permit waits",
    ]
    for phase in phases:
        median, p95 = _figure(rf"(?m)^\s+{re.escape(phase)}\s+{NUMBER} s\s+{NUMBER} s\s+\(", out)
        assert median <= p95, phase
    (events,) = _figure(r"events per step\s+median (\d+), max \d+", out)
    assert events > 0
    rss, pss = _figure(rf"peak memory \(process tree\) RSS summed {NUMBER} MB, PSS summed {NUMBER} MB", out)
    assert 0 < pss <= rss
    for kind in ("run worker", "CLIs"):  # steps are threads of the run worker (the default executor)
        _figure(rf"peak PSS {kind}\s+{NUMBER} MB, (\d+) at once, largest {NUMBER} MB", out)
    assert "backfill of 1 days, R = 60/min, L = 0.1 s: COMPLETED_SUCCESS" in out, out
    (requests,) = _figure(r"requests (\d+) in \d+ s", out)
    (window,) = _figure(r"max requests in any 60 s window (\d+) \(limit 60\)", out)
    assert requests >= 2 and 1 <= window <= requests


@pytest.mark.real_cli
def test_the_warm_cli_benchmark_prints_both_transports_side_by_side(two_prompt_registry):
    out = _bench(
        "warm_cli", "--latencies", "0.1", "--days", "1", "--backfill-latency", "0.1",
        registry=two_prompt_registry,
    )
    for transport in ("oneshot", "acp"):
        day = rf"{transport}\s+\[load [^\]]+\] wall {NUMBER} s \(command {NUMBER} s\), .*?(\d+) calls"
        wall, _, calls = _figure(day, out)
        assert wall > 0 and calls == 2
        (backfill_calls,) = _figure(rf"{transport}\s+\[load [^\]]+\] COMPLETED_SUCCESS in \d+ s: (\d+) calls", out)
        assert backfill_calls == 2
    _figure(rf"warm CLI CPU per prompt \(session/new \+ prompt\): mean {NUMBER} s", out)


@pytest.mark.real_cli
def test_the_footprint_benchmark_prints_both_transports_side_by_side(two_prompt_registry, monkeypatch):
    """The one-shot and warm CLI parts, on two prompts at L = 0.3 s, in one table. The old ``nh``
    part cannot run here: its code is another repository's (hopchouinard/NeuroHelix), never
    committed to this one, and CI has no network to fetch it or the typer it needs; without a
    checkout the benchmark says so in one line, which is what is checked."""
    monkeypatch.delenv("NH_OLD_NH", raising=False)
    out = _bench("footprint", "--latency", "0.3", registry=two_prompt_registry)
    header = re.search(r"(?m)^figure\s+one-shot, fake CLI\s+warm CLI \(acp\), real CLI\s+goal$", out)
    assert header, out
    table = out[header.end():]

    def cells(name: str, cell: str = NUMBER) -> list[float]:
        return _figure(rf"(?m)^{re.escape(name)}\s+{cell}[^\n]*?\s{{2,}}{cell}", table)

    for load in ("load before", "load after"):
        cells(load, rf"{NUMBER} \d+\.\d+ \d+\.\d+")
    assert all(wall > 0 for wall in cells("run wall", rf"{NUMBER} s"))
    assert all(ratio > 0 for ratio in cells("wall / bound"))
    medians, p95s = cells("per-step overhead median", rf"{NUMBER} s"), cells("per-step overhead p95", rf"{NUMBER} s")
    assert all(0 <= m <= p for m, p in zip(medians, p95s)), (medians, p95s)
    for phase in ("process start", "plan + resources", "before the CLI", "CLI calls", "checks + events"):
        shot_median, shot_p95, warm_median, warm_p95 = _figure(
            rf"(?m)^  {re.escape(phase)}\s+{NUMBER} / {NUMBER}\s+{NUMBER} / {NUMBER}", table
        )
        assert shot_median <= shot_p95 and warm_median <= warm_p95, phase
    assert cells("model calls") == [2.0, 2.0]
    pss, rss = cells("peak PSS summed", rf"{NUMBER} MB"), cells("peak RSS summed", rf"{NUMBER} MB")
    assert all(0 < p <= r for p, r in zip(pss, rss)), (pss, rss)
    for kind in ("run worker", "CLIs"):  # the steps are threads of the run worker (the default executor)
        cells(f"  {kind}", rf"{NUMBER} MB \(\d+\)")
    # The warm CLI service detaches from its step: it is measured only because the benchmark reaps it.
    assert re.search(rf"(?m)^  warm CLI service\s+-\s+{NUMBER} MB \(1\)", table), out
    assert "old nh: not run (no checkout given" in out, out


@pytest.mark.real_cli
def test_the_requests_benchmark_prints_its_json_and_the_before_and_after(two_prompt_registry):
    out = _bench("requests", "--day", "2026-11-22", registry=two_prompt_registry)
    table, _, summary = out.partition("\nload average")
    before, after = json.loads(table)
    for figures in (before, after):
        assert figures["requests"] >= 2 and figures["input_tokens"] > 0
    assert re.search(r"requests per day: \d+ -> \d+", summary), out


@pytest.mark.browser
def test_the_site_benchmark_prints_its_builds_and_the_search_payload():
    out = _bench("site", "--days", "12")
    assert _figure(r"inputs: (\d+) days written", out) == [12.0]
    _figure(rf"full build: {NUMBER}s \(before the trends: {NUMBER}s; (\d+) pages rendered", out)
    _figure(rf"one-day incremental build: {NUMBER}s \(before the trends: {NUMBER}s; (\d+) rendered, (\d+) kept", out)
    _figure(rf"new-day build: {NUMBER}s \((\d+) rendered, (\d+) kept", out)
    size, requests = _figure(rf"search payload for one query \(.*?\): {NUMBER} KB in (\d+) requests", out)
    assert size > 0 and requests > 0


@pytest.mark.browser
def test_the_lighthouse_script_scores_every_page_in_every_category():
    out = _bench("lighthouse", "--days", "3", "--min", "0")
    pages = ["index", "day page", "search (query)", "tag page", "trends", "week page"]
    scores = [_figure(rf"(?m)^{re.escape(page)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", out) for page in pages]
    assert all(0 <= score <= 100 for row in scores for score in row), scores
    assert _figure(r"lowest score (\d+) \(goal >= 0\)", out) == [min(min(row) for row in scores)]


@pytest.mark.real_cli
def test_the_unattended_benchmark_prints_the_day_before_and_after_side_by_side():
    # Two research rows, a quota the day overruns at once, the old code killed at its deadline.
    out = _bench("unattended", "--rows", "2", "--flash-per-day", "2", "--deadline", "45")
    header = re.search(r"(?m)^figure\s+before \(ad60e36\)\s+after \(working tree\)\s*$", out)
    assert header, out
    table = out[header.end():]
    (spent,) = _figure(r"(?m)^requests to gemini-2\.5-flash after its first per-day 429\s+\S.*?\s{2,}(\d+)\s*$", table)
    assert spent >= 0
    wall = r"(> 45 s \(still running, killed\)|\d+ s \(exit \d+\)( \+ catch-up of \d+ assets \d+ s \(exit \d+\))?)"
    assert re.search(rf"(?m)^wall time of the day\s+{wall}\s+{wall}\s*$", table), out
    assert re.search(r"(?m)^alerts sent\s+\d+ \(\d+ failed runs; failure sensor only\)\s+\d+ \(\d+ failed runs; failure \+ service sensors\)", table), out
    _figure(rf"/proc/loadavg {NUMBER} {NUMBER} {NUMBER}", out)
