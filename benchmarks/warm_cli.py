"""Benchmark: the warm CLI service (ACP) against one CLI per call, side by side, with the REAL Gemini CLI.

    .venv/bin/python -m benchmarks.warm_cli                       # L = 5 and 20 s, backfill
    .venv/bin/python -m benchmarks.warm_cli --latencies 5 --parts day

A script that prints figures, not a test. Each figure is measured for both transports in one
invocation, one right after the other, with the machine's load average printed beside it:

- **day**: the daily job (``dagster job execute -j neurohelix_daily``, as the schedule runs it)
  with the real CLI against the project's fake Gemini API, whose answers come after L seconds
  (tool-loop requests at once, so a call takes about L, as ``lower_bound.lower_bound_s`` assumes).
  Wall time RUN_START → RUN_SUCCESS against the schedule's lower bound; peak memory of the day's
  process tree (the command, its steps, the CLIs, the warm CLI service; not this script and its
  fake API, which stands in for Google); the per-step phases (``benchmarks.footprint`` prints them);
- **CPU per call**: the CLI processes' own CPU (a wrapper script around the CLI records each
  one's ``times`` when it exits) plus, for the warm CLI transport, the service's own CPU, divided by the
  calls; and the whole tree's CPU (this process is a child subreaper, so the detached service is
  reaped here too and every process's CPU lands in ``RUSAGE_CHILDREN``);
- **backfill**: a 3-day multi-run backfill through ``dagster dev`` at the rate limit, its CPU
  (whole tree), wall time and requests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.lower_bound import lower_bound_s
from benchmarks.machine import DAGSTER, TreeMemory, become_subreaper, load_average
from benchmarks.step_breakdown import api_calls, day_breakdown
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.registry import Registry, load_registry
from nh_assets.settings import REPO_ROOT, registry_path_from_env
from nh_assets_tests.support.fakes import pipeline_env

GEMINI = REPO_ROOT / "node_modules" / ".bin" / "gemini"


class AnswerAfter(FakeGeminiAPI):
    """The fake API with latency on the answer only: a search loop's first two requests come
    back at once, so every call takes about L, like a step of the lower bound.

    Its request log also keeps each request's arrival (``arrived``; the log's ``time`` is when the
    answer was ready): with the real CLI, that log is where a step's model call is seen from its
    first request to its last answer (``step_breakdown.api_calls``)."""

    def __init__(self, answer_latency_s: float, **kwargs):
        super().__init__(**kwargs)
        self.answer_latency_s = answer_latency_s
        self.answers = 0
        self._arrival = threading.local()  # one request at a time per handler thread

    def refusal(self, model: str, prompt: str) -> int | None:
        # Asked of every generation request right after its body is read: its arrival.
        self._arrival.time = time.time()
        return super().refusal(model, prompt)

    def _record(self, record: dict) -> None:
        record["arrived"] = self._arrival.__dict__.pop("time", record["time"])
        super()._record(record)

    def answer(self, model: str, prompt: str) -> str:
        time.sleep(self.answer_latency_s)
        self.answers += 1
        return super().answer(model, prompt)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap_all(timeout_s: float = 60.0) -> None:
    """Wait for every orphan reparented to us (the warm CLI service, its CLIs) so its CPU is counted."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.2)
    raise SystemExit("bench: a child process did not end (the warm CLI service should end with its owner)")


def _wrapper(base: Path) -> tuple[Path, Path]:
    """A ``gemini`` that runs the real one under GNU time, which appends its CPU to a log."""
    if not Path("/usr/bin/time").exists():
        raise SystemExit("bench: GNU time is needed to count each CLI's CPU: apt-get install time")
    log = base / "cli_cpu.log"
    script = base / "real-cli" / "gemini"  # not bin/: pipeline_env puts the Python fake there
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\nexec /usr/bin/time -a -o "{log}" -f "cpu %U %S" "{GEMINI}" "$@"\n')
    script.chmod(0o755)
    return script, log


def _cli_cpu(log: Path) -> tuple[float, int]:
    """Summed user+sys seconds of every CLI process, and how many there were."""
    if not log.exists():
        return 0.0, 0
    found = re.findall(r"^cpu ([\d.]+) ([\d.]+)$", log.read_text(), re.MULTILINE)
    return sum(float(u) + float(s) for u, s in found), len(found)


def _service_cpu(home: Path) -> float:
    total = 0.0
    for log in (home / "gemini_warm_cli").glob("*.log"):
        for match in re.finditer(r"CPU: service ([\d.]+)s", log.read_text()):
            total += float(match.group(1))
    return total


def _prompt_cpu(home: Path) -> list[float]:
    """Each prompt's CPU on its warm CLI (session/new and session/prompt), from the service's log."""
    found = []
    for log in (home / "gemini_warm_cli").glob("*.log"):
        found += [float(m) for m in re.findall(r"^.* prompt on CLI pid \d+: [\d.]+s, ([\d.]+)s CPU$", log.read_text(), re.M)]
    return found


def _env(base: Path, api: FakeGeminiAPI, transport: str, rate: int) -> tuple[dict[str, str], Path]:
    cli, cpu_log = _wrapper(base)
    env = {
        **os.environ,
        **pipeline_env(
            base, NH_GEMINI_CLI=str(cli), NH_GEMINI_API_URL=api.base_url, NH_GEMINI_TRANSPORT=transport,
            NH_RATE_PER_MINUTE=str(rate), NH_RATE_PER_DAY=str(max(rate * 100, 1000)),
        ),
        "GEMINI_API_KEY": "bench-key-not-a-secret",
        "TMPDIR": tempfile.mkdtemp(prefix="nh-"),  # forkserver socket paths must stay short
    }
    subprocess.run([sys.executable, "-m", "nh_assets.pools", "apply"], env=env, check=True, capture_output=True)
    return env, cpu_log


def one_day(transport: str, latency: float, day: str, registry: Registry | None = None) -> dict:
    """One day through ``transport`` with the real CLI. The process tree is sampled from this
    process, a child subreaper (``become_subreaper``), so the warm CLI service, which detaches from
    the step that starts it, stays in the tree; this process itself is not counted."""
    registry = registry or load_registry(registry_path_from_env())
    with tempfile.TemporaryDirectory(prefix="nh-bench-acp-") as tmp, AnswerAfter(latency) as api:
        env, cpu_log = _env(Path(tmp), api, transport, rate=50)
        load = load_average()
        memory = TreeMemory(os.getpid(), root_kind="benchmark", count_root=False)
        memory.start()
        cpu_before = _children_cpu()
        started = time.monotonic()
        done = subprocess.run(
            [DAGSTER, "job", "execute", "-m", "nh_assets", "-j", "neurohelix_daily", "--tags",
             json.dumps({"dagster/partition": day})],
            env=env, cwd=tmp, capture_output=True, text=True,
        )
        command_wall = time.monotonic() - started
        _reap_all()
        peak = memory.stop()
        load_after = load_average()
        cpu = _children_cpu() - cpu_before
        if done.returncode != 0:
            raise SystemExit(f"bench: the day failed ({transport}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        fallbacks = done.stdout.count("Gemini transport oneshot") + done.stderr.count("Gemini transport oneshot")
        home = Path(env["DAGSTER_HOME"])
        breakdown = day_breakdown(str(home), registry, api_calls(api.requests), memory.started, memory.last_seen)
        cli_cpu, cli_processes = _cli_cpu(cpu_log)
        calls = api.answers
        return {
            **breakdown,
            "load": load, "load_after": load_after, "calls": calls, "fallbacks": fallbacks, "cli_processes": cli_processes,
            "command_wall_s": command_wall, "tree_cpu_s": cpu, "cli_cpu_s": cli_cpu, "service_cpu_s": _service_cpu(home),
            "prompt_cpu": _prompt_cpu(home),
            "peak_rss_mb": peak / 2**20, "memory": memory,
        }


def backfill(transport: str, days: list[str], rate: int, latency: float, registry) -> dict:
    from nh_assets_tests.support.dagster_server import running_dagster

    with tempfile.TemporaryDirectory(prefix="nh-bench-acp-bf-") as tmp, AnswerAfter(latency) as api:
        env, cpu_log = _env(Path(tmp), api, transport, rate=rate)
        load = load_average()
        cpu_before = _children_cpu()
        started = time.monotonic()
        with running_dagster(env) as server:
            days_range = {"range": {"start": days[0], "end": days[-1]}}
            backfill_id = server.launch_backfill({
                "partitionsByAssets": [
                    {"assetKey": {"path": [s.prompt_id]}, "partitions": days_range} for s in registry.prompts
                ],
            })
            while (status := server.backfill_status(backfill_id)) == "REQUESTED":
                time.sleep(2)
            wall = time.monotonic() - started
        _reap_all()
        cpu = _children_cpu() - cpu_before
        cli_cpu, cli_processes = _cli_cpu(cpu_log)
        requests = [r for r in api.requests if r["status"] == 200]
        return {
            "load": load, "status": status, "wall_s": wall, "tree_cpu_s": cpu, "cli_cpu_s": cli_cpu,
            "service_cpu_s": _service_cpu(Path(env["DAGSTER_HOME"])), "cli_processes": cli_processes,
            "prompt_cpu": _prompt_cpu(Path(env["DAGSTER_HOME"])),
            "calls": api.answers, "requests": len(requests),
        }


def _print_day(transport: str, r: dict, bound: float) -> None:
    per_call = (r["cli_cpu_s"] + r["service_cpu_s"]) / max(r["calls"], 1)
    print(
        f"  {transport:7s} [{r['load']}] wall {r['run_wall_s']:.1f} s (command {r['command_wall_s']:.1f} s), "
        f"wall/bound {r['run_wall_s'] / bound:.2f}; {r['calls']} calls, {r['cli_processes']} CLI processes, "
        f"{r['fallbacks']} fallbacks"
    )
    print(
        f"          CPU per call: CLI+service {per_call:.2f} s (CLIs {r['cli_cpu_s']:.1f} s, service {r['service_cpu_s']:.1f} s); "
        f"whole tree {r['tree_cpu_s']:.1f} s = {r['tree_cpu_s'] / max(r['calls'], 1):.2f} s/call; "
        f"peak memory RSS {r['peak_rss_mb']:.0f} MB, PSS {r['memory'].peak_pss_bytes / 2**20:.0f} MB (the day's tree, this script not counted)"
    )
    _print_steady(r)


def _print_steady(r: dict) -> None:
    if r["prompt_cpu"]:
        prompts = r["prompt_cpu"]
        mean = sum(prompts) / len(prompts)
        print(
            f"          warm CLI CPU per prompt (session/new + prompt): mean {mean:.2f} s, max {max(prompts):.2f} s; "
            f"plus the service's own {r['service_cpu_s'] / len(prompts):.2f} s/prompt"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm_cli", description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", default="5,20", help="comma list of answer latencies L, seconds")
    parser.add_argument("--parts", default="day,backfill", help="comma list: day, backfill")
    parser.add_argument("--days", type=int, default=3, help="days in the backfill")
    parser.add_argument("--rate", type=int, default=50, help="rate limit R per minute during the backfill")
    parser.add_argument("--backfill-latency", type=float, default=1.0, help="L during the backfill")
    args = parser.parse_args(argv)
    become_subreaper("the service's CPU would go uncounted")
    registry = load_registry(registry_path_from_env())
    max_processes = int(os.environ.get("NH_MAX_GEMINI_PROCESSES", "4"))
    parts = set(args.parts.split(","))
    print(f"Gemini CLI 0.61.0 (real), fake API; {os.cpu_count()} cores; NH_MAX_GEMINI_PROCESSES={max_processes}")
    if "day" in parts:
        for latency in (float(x) for x in args.latencies.split(",")):
            bound = lower_bound_s(registry, latency, max_processes, 50)["bound"]
            print(f"one day (neurohelix_daily), L = {latency:g} s, lower bound {bound:.1f} s")
            for transport in ("oneshot", "acp"):
                _print_day(transport, one_day(transport, latency, "2026-11-20", registry), bound)
    if "backfill" in parts:
        days = [f"2026-11-{d:02d}" for d in range(10, 10 + args.days)]
        print(f"backfill of {args.days} days, R = {args.rate}/min, L = {args.backfill_latency:g} s (multi-run, dagster dev)")
        for transport in ("oneshot", "acp"):
            r = backfill(transport, days, args.rate, args.backfill_latency, registry)
            print(
                f"  {transport:7s} [{r['load']}] {r['status']} in {r['wall_s']:.0f} s: {r['calls']} calls, "
                f"{r['requests']} requests, {r['cli_processes']} CLI processes; CPU whole tree {r['tree_cpu_s']:.0f} s "
                f"= {r['tree_cpu_s'] / r['wall_s'] * 60:.0f} CPU-s per minute; CLIs+service "
                f"{r['cli_cpu_s'] + r['service_cpu_s']:.0f} s = {(r['cli_cpu_s'] + r['service_cpu_s']) / max(r['calls'], 1):.2f} s/call"
            )
            _print_steady(r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
