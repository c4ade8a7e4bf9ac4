"""A stand-in ``gemini`` executable for fast resource and graph tests.

It speaks the real CLI's headless contract (``-m MODEL -o json -p PROMPT``, JSON on stdout,
exit 41/55 for auth/trust) and answers with the same deterministic text as the project's fake
Gemini API, so a whole day can materialize in seconds. Behaviour is chosen per test through
environment variables:

- ``FAKE_GEMINI_SCENARIO``: ok | fail_n | rate_limit | hang | invalid_json | auth | untrusted | leak_secret
  | drop_sections (a markdown answer without its ``##`` headings) | cli_error_text (an answer
  that carries the CLI's ``API Error`` text, as a model echoing a failed tool call would)
- ``FAKE_GEMINI_FAIL_N``: with fail_n, how many calls fail before calls succeed
- ``FAKE_GEMINI_ONLY_FOR``: apply the scenario only to this prompt id (others succeed)
- ``FAKE_GEMINI_LATENCY``: seconds to sleep before answering
- ``FAKE_GEMINI_HOLD_UNTIL``: a file; the call answers only once it exists (at most 10 minutes later)
- ``FAKE_GEMINI_RENDEZVOUS``: ``DIR:N``; while DIR exists, a call marks its day there and answers only
  once calls of N different days have started (at most 2 minutes later)
- ``FAKE_GEMINI_STATE``: directory for the call counter and the hang scenario's pid files
- ``FAKE_GEMINI_LOG``: JSONL file receiving one record per call (argv flags, prompt, cwd, times)
- ``FAKE_GEMINI_API_REQUESTS``: API requests one answered call makes (default 1; a search loop makes 3)
- ``FAKE_GEMINI_SEARCH=1``: with ``google_web_search`` in the call folder's ``tools.core``, search as
  0.61.0's tool does (one ``generateContent`` on its web-search model with ``googleSearch``
  grounding, through the same base URL) and cite the returned sources, as a model would

Like the real CLI it reads ``-m ALIAS`` from the call folder's ``.gemini/settings.json`` when the
folder is trusted, and it sends its requests to ``GOOGLE_GEMINI_BASE_URL`` (the resource's rate
gate), so the rate limit applies to these requests exactly as to the real CLI's; a 400 answer
ends the call as the real CLI ends it.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from nh_assets.demo.answers import count_tokens, render_fake_response
from nh_assets.demo.search import SEARCH_TOOL, search_query, with_sources

SEARCH_MODEL = "gemini-3-flash-preview"  # 0.61.0's ``web-search`` model alias


def _search(prompt: str, tokens: dict[str, int]) -> str | None:
    """The tool's text for the model, as 0.61.0 builds it: the answer, then ``[n] title (uri)``.
    ``tokens`` gets what the answer's ``usageMetadata`` said, as the real CLI's ``stats`` do."""
    query = search_query(prompt)
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": query}]}], "tools": [{"googleSearch": {}}]})
    request = urllib.request.Request(
        f"{os.environ['GOOGLE_GEMINI_BASE_URL']}/v1beta/models/{SEARCH_MODEL}:generateContent", data=body.encode(),
        method="POST", headers={"Content-Type": "application/json", "x-goog-api-key": os.environ.get("GEMINI_API_KEY", "")},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            answer = json.load(response)
        candidate = answer["candidates"][0]
        _add_usage(tokens, answer)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        return f'Error: Error during web search for query "{query}": {error}'
    chunks = (candidate.get("groundingMetadata") or {}).get("groundingChunks") or []
    lines = [f"[{i}] {c['web'].get('title') or 'Untitled'} ({c['web'].get('uri')})" for i, c in enumerate(chunks, 1)]
    text = "".join(p.get("text", "") for p in candidate["content"]["parts"])
    return f'Web search results for "{query}":\n\n{text}\n\nSources:\n' + "\n".join(lines)


def _resolve_model(name: str) -> tuple[str, dict]:
    """(model, settings) as the real CLI resolves an alias from a trusted folder's settings."""
    settings_file = Path(".gemini/settings.json")
    if os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") != "true" or not settings_file.is_file():
        return name, {}
    settings = json.loads(settings_file.read_text())
    alias = settings.get("modelConfigs", {}).get("customAliases", {}).get(name)
    return (alias["modelConfig"]["model"] if alias else name), settings


def _add_usage(tokens: dict[str, int], answer: dict) -> None:
    usage = answer.get("usageMetadata") or {}
    tokens["input"] += int(usage.get("promptTokenCount") or 0)
    tokens["candidates"] += int(usage.get("candidatesTokenCount") or 0)
    tokens["total"] += int(usage.get("totalTokenCount") or 0)


def _api_requests(model: str, prompt: str, count: int, tokens: dict[str, int]) -> str | None:
    """Send ``count`` generation requests through GOOGLE_GEMINI_BASE_URL; an error message or None.
    As the real CLI's ``stats`` do, ``tokens`` then sums what the answers' ``usageMetadata`` said."""
    base = os.environ.get("GOOGLE_GEMINI_BASE_URL")
    if not base:
        return None
    for name in tokens:
        tokens[name] = 0
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]}).encode()
    for _ in range(count):
        request = urllib.request.Request(
            f"{base}/v1beta/models/{model}:generateContent", data=body, method="POST",
            headers={"Content-Type": "application/json", "x-goog-api-key": os.environ.get("GEMINI_API_KEY", "")},
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                _add_usage(tokens, json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as error:
            return json.loads(error.read() or b"{}").get("error", {}).get("message") or f"HTTP {error.code}"
        except urllib.error.URLError as error:
            return f"fetch failed: {error.reason}"
    return None


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def _meet(rendezvous: str, prompt: str) -> None:
    """Calls of different days meet before answering: runs that should overlap then do, on any
    machine load, and runs that were wrongly kept apart still are (the wait gives up)."""
    where, days = rendezvous.rsplit(":", 1)
    folder = Path(where)
    if not folder.is_dir():
        return
    day = next((l.split(":", 1)[1].strip() for l in prompt.splitlines() if l.startswith("DATE:")), "unknown")
    (folder / day).touch()
    _wait_until(lambda: len(list(folder.iterdir())) >= int(days), timeout_s=120)


def _wait_until(condition, timeout_s: float) -> None:
    """Until the test's condition holds; then, or at the bound, the call goes on."""
    give_up = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < give_up:
        time.sleep(0.1)


def _next_call_number(state: Path) -> int:
    state.mkdir(parents=True, exist_ok=True)
    counter = state / "calls"
    # O_EXCL-free append is atomic enough for one line per call; the count is the line count.
    with counter.open("a") as handle:
        handle.write(f"{os.getpid()}\n")
    return len(counter.read_text().splitlines())


def main() -> int:
    argv = sys.argv[1:]
    started = time.time()
    prompt = _flag(argv, "-p") or ""
    model, workspace = _resolve_model(_flag(argv, "-m") or "gemini-2.5-flash")
    prompt_id = next((l.split(":", 1)[1].strip() for l in prompt.splitlines() if l.startswith("NEUROHELIX PROMPT:")), "")
    scenario = os.environ.get("FAKE_GEMINI_SCENARIO", "ok")
    only_for = os.environ.get("FAKE_GEMINI_ONLY_FOR")
    if only_for and only_for != prompt_id:
        scenario = "ok"
    state = Path(os.environ.get("FAKE_GEMINI_STATE", Path.cwd()))
    call = _next_call_number(state) if scenario != "ok" or "FAKE_GEMINI_STATE" in os.environ else 1
    stdin_data = sys.stdin.read() if not sys.stdin.closed else ""

    time.sleep(float(os.environ.get("FAKE_GEMINI_LATENCY", "0")))
    if rendezvous := os.environ.get("FAKE_GEMINI_RENDEZVOUS"):
        _meet(rendezvous, prompt)
    if hold := os.environ.get("FAKE_GEMINI_HOLD_UNTIL"):
        # A test's moment to act on calls in flight is then a state it waits for, not a race.
        _wait_until(Path(hold).exists, timeout_s=600)
    log = os.environ.get("FAKE_GEMINI_LOG")

    def record(outcome: str) -> None:
        if log:
            entry = {
                "prompt_id": prompt_id, "model": model, "prompt": prompt, "outcome": outcome,
                "approval_mode": _flag(argv, "--approval-mode"), "skip_trust": "--skip-trust" in argv,
                "output": _flag(argv, "-o"), "cwd": os.getcwd(), "cwd_entries": os.listdir("."),
                "stdin": stdin_data, "pid": os.getpid(), "start": started, "end": time.time(),
                "env_names": sorted(os.environ), "workspace_settings": workspace,
            }
            with open(log, "a") as handle:
                handle.write(json.dumps(entry) + "\n")

    if scenario == "auth":
        record("auth")
        # As 0.61.0 does: the error object pretty-printed on stderr, nothing on stdout.
        error = {"type": "Error", "message": "Please set an Auth method in your settings.json or specify GEMINI_API_KEY", "code": 41}
        print(json.dumps({"session_id": "fake", "error": error}, indent=2), file=sys.stderr)
        return 41
    if scenario == "untrusted":
        record("untrusted")
        print("Gemini CLI is not running in a trusted directory. Use --skip-trust.", file=sys.stderr)
        return 55
    if scenario == "rate_limit":
        # As 0.61.0 does after its own retries: traces, then exit(429) truncated to 173.
        record("rate_limit")
        print("Attempt 1 failed with status 429. Retrying with backoff... _ApiError: RESOURCE_EXHAUSTED", file=sys.stderr)
        error = {"type": "Error", "message": "Resource has been exhausted (e.g. check quota).", "code": 429}
        print(json.dumps({"session_id": "fake", "error": error}, indent=2), file=sys.stderr)
        return 173
    if scenario == "leak_secret":
        record("leak_secret")
        print(f"debug: using key {os.environ.get('GEMINI_API_KEY', '')}", file=sys.stderr)
        print(json.dumps({"error": {"type": "Error", "message": f"boom with key {os.environ.get('GEMINI_API_KEY', '')}", "code": 1}}))
        return 1
    if scenario == "hang":
        record("hang")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (state / "hang_pids").write_text(f"{os.getpid()} {child.pid}\n")
        time.sleep(600)
        return 0
    if scenario == "fail_n" and call <= int(os.environ.get("FAKE_GEMINI_FAIL_N", "1")):
        record("fail")
        print(f"Error: fake failure {call}", file=sys.stderr)
        return 1
    if scenario == "invalid_json":
        record("invalid_json")
        print("this is not json")
        return 0

    response = render_fake_response(prompt)
    tokens = {"input": count_tokens(prompt), "candidates": count_tokens(response)}
    tokens["total"] = tokens["input"] + tokens["candidates"]
    # As the real CLI does, the search comes before the main model's last answer.
    searched: dict = {}
    tools = (workspace.get("tools") or {}).get("core") or []
    if os.environ.get("FAKE_GEMINI_SEARCH") == "1" and SEARCH_TOOL in tools and os.environ.get("GOOGLE_GEMINI_BASE_URL"):
        search_tokens = {"input": 0, "candidates": 0, "total": 0}
        response = with_sources(response, _search(prompt, search_tokens))
        searched[SEARCH_MODEL] = {"api": {"totalRequests": 1}, "tokens": search_tokens}
    failed = _api_requests(model, prompt, int(os.environ.get("FAKE_GEMINI_API_REQUESTS", "1")), tokens)
    if failed:
        record("api_error")
        print(json.dumps({"session_id": "fake", "error": {"type": "Error", "message": failed, "code": 1}}, indent=2),
              file=sys.stderr)
        return 1
    requests = int(os.environ.get("FAKE_GEMINI_API_REQUESTS", "1"))
    stats = {model: {"api": {"totalRequests": requests}, "tokens": tokens}, **searched}
    outcome = "ok"
    if scenario == "drop_sections":
        outcome = "drop_sections"
        response = "\n".join(line for line in response.splitlines() if not line.startswith("##")) + "\n"
    if scenario == "cli_error_text":
        outcome = "cli_error_text"
        response += "\n[API Error: got status: 429 Too Many Requests while calling google_web_search]\n"
    record(outcome)
    print(json.dumps({
        "session_id": "fake-session",
        "response": response,
        "stats": {"models": stats},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
