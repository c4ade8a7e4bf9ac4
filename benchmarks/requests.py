"""Benchmark: what one day's prompts cost at the API, the CLI's defaults against the research setup.

    .venv/bin/python -m benchmarks.requests [--day 2026-11-22]

A script that prints figures, not a test. Every call goes through the real, pinned Gemini CLI to
the project's fake Gemini API, which logs each request's size, tools, temperature and token
counts (its tokenizer counts every input character the request carries: system instruction,
turns and tool declarations, one token per four characters). Each LLM row of the registry is
asked its real prompt for the day (upstream artifacts made first by the fast fake CLI), twice:

- ``before``: the call as it was made until this change: ``gemini -m MODEL -o json -p PROMPT``,
  the CLI's own coding-agent system prompt and its default tools, temperature left to the CLI;
- ``after``: ``GeminiCLIResource.generate`` as the assets call it: the NeuroHelix system prompt,
  only the row's tools, the row's temperature, every request through the rate gate.

It prints the median first-request size by kind of row, the day's requests and input tokens,
and the day's cost per model (the tokens a real day would be billed for, by the fake tokenizer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import dagster as dg

from nh_assets.definitions import DAILY_JOB_NAME, build_definitions
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.cli_home import write_cli_home
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.prompts.rendering import render_prompt
from nh_assets.prompts.upstream import collect_upstream
from nh_assets.registry import PromptSpec, load_registry
from nh_assets.settings import REPO_ROOT, load_settings, registry_path_from_env
from nh_assets_tests.support.fakes import gemini_config, pipeline_env

GEMINI = REPO_ROOT / "node_modules" / ".bin" / "gemini"


def _kind(spec: PromptSpec) -> str:
    return "research (search)" if "google_web_search" in spec.allowed_tools else f"{spec.output_format} (no tools)"


def _before(spec: PromptSpec, prompt: str, api: FakeGeminiAPI, base: Path) -> None:
    home = write_cli_home(base / f"home-{spec.prompt_id}")
    workdir = base / f"call-{spec.prompt_id}"
    workdir.mkdir(parents=True)
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "GEMINI_CLI_HOME": str(home), "GEMINI_API_KEY": "bench",
        "GOOGLE_GEMINI_BASE_URL": api.base_url, "GEMINI_CLI_NO_RELAUNCH": "true", "NO_PROXY": "127.0.0.1",
    }
    subprocess.run(
        [str(GEMINI), "-m", spec.model, "-o", "json", "--approval-mode", "default", "--skip-trust", "-p", prompt],
        env=env, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=True,
    )


def _after(spec: PromptSpec, prompt: str, resource: GeminiCLIResource) -> None:
    call = ModelCall(
        model=spec.model, timeout_s=300, tools=spec.allowed_tools, temperature=spec.temperature,
        thinking_budget=spec.thinking_budget, approval_mode=spec.approval_mode,
    )
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        resources.gemini.generate(context, prompt=prompt, call=call)


def _summary(label: str, calls: list[tuple[PromptSpec, list[dict]]]) -> dict:
    first_bytes: dict[str, list[int]] = defaultdict(list)
    per_model: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for spec, requests in calls:
        first_bytes[_kind(spec)].append(requests[0]["bytes"])
        for r in requests:
            model = r["path"].split("/models/")[1].split(":")[0]
            per_model[model][0] += 1
            per_model[model][1] += r["usage"]["promptTokenCount"]
            per_model[model][2] += r["usage"]["candidatesTokenCount"]
    return {
        "label": label,
        "median_first_request_bytes": {k: int(statistics.median(v)) for k, v in sorted(first_bytes.items())},
        "requests": sum(m[0] for m in per_model.values()),
        "input_tokens": sum(m[1] for m in per_model.values()),
        "output_tokens": sum(m[2] for m in per_model.values()),
        "per_model": {m: {"requests": v[0], "input": v[1], "output": v[2]} for m, v in sorted(per_model.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.requests")
    parser.add_argument("--day", default="2026-11-22")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    registry = load_registry(registry_path_from_env())
    base = Path(tempfile.mkdtemp(prefix="nh-bench-requests-"))
    env = pipeline_env(base)
    settings = load_settings(env)
    defs = build_definitions(settings, registry)
    with dg.instance_for_test(temp_dir=env["DAGSTER_HOME"]) as instance:
        ok = defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(partition_key=args.day, instance=instance).success
    assert ok, "the fake CLI's day did not materialize"
    results = []
    for label in ("before", "after"):
        with FakeGeminiAPI() as api:
            resource = GeminiCLIResource(
                config=gemini_config(
                    base, gemini_cli=str(GEMINI), gemini_transport="oneshot", rate_limit_db=str(base / f"{label}.sqlite"),
                    workdir_root=str(base / f"w-{label}"), gemini_api_url=api.base_url, demo=True,
                    system_prompt=str(settings.system_prompt), rate_per_minute=1000, rate_per_day=100_000,
                )
            )
            calls = []
            started = time.monotonic()
            for spec in registry.prompts:
                if not spec.uses_llm:
                    continue
                upstream = collect_upstream(
                    spec, registry, day=date.fromisoformat(args.day), first_day=settings.partition_start,
                    data_root=settings.data_root,
                )
                prompt = render_prompt(spec, args.day, upstream).text
                seen = len(api.requests)
                if label == "before":
                    _before(spec, prompt, api, base / label)
                else:
                    _after(spec, prompt, resource)
                calls.append((spec, [r for r in api.requests[seen:] if r["status"] == 200]))
            summary = _summary(label, calls)
            summary["wall_s"] = round(time.monotonic() - started, 1)
            results.append(summary)
    print(json.dumps(results, indent=2))
    before, after = results
    print(f"\nload average (1 min) before the run: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    for kind in after["median_first_request_bytes"]:
        print(f"median first request, {kind}: {before['median_first_request_bytes'].get(kind)} B -> "
              f"{after['median_first_request_bytes'][kind]} B")
    print(f"requests per day: {before['requests']} -> {after['requests']}")
    print(f"input tokens per day (fake tokenizer): {before['input_tokens']} -> {after['input_tokens']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
