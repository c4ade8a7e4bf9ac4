"""The fake Gemini API, unit-tested over HTTP and driven by the REAL gemini CLI.

Fixtures come from ``nh_assets_tests/support/gemini_api_fixtures.py``.  The CLI runs
as ``gemini -m gemini-2.5-flash -o json -p PROMPT`` with stdin closed and an
empty temporary cwd.  Runtime is dominated by the 429 retry test (~5 s of CLI
backoff); the whole module takes ~20 s.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nh_assets.demo.answers import FAKE_LABEL, count_tokens, parse_prompt_contract, render_fake_response
from nh_assets.demo.api import FakeGeminiAPI
from nh_assets_tests.support.failing_api import FailingGeminiAPI

MODEL = "gemini-2.5-flash"

MARKDOWN_PROMPT = """You are the NeuroHelix research assistant.
NEUROHELIX PROMPT: ai_news_scan
RESPONSE FORMAT: markdown
REQUIRED SECTIONS:
- Top Stories
- Why It Matters
- Sources

Write today's report."""

JSON_PROMPT = """NEUROHELIX PROMPT: tag_report
RESPONSE FORMAT: json
ALLOWED CATEGORIES: models, agents, safety, hardware, policy, open-source

Return tags and categories."""

HTML_PROMPT = "NEUROHELIX PROMPT: dashboard_card\nRESPONSE FORMAT: html\n"


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _post(base_url: str, path: str, body: Any) -> tuple[int, str, bytes]:
    req = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def _contents(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def _unfence_json(text: str) -> Any:
    m = re.fullmatch(r"```json\n(.*)\n```", text.strip(), re.S)
    assert m, text
    return json.loads(m.group(1))


def _run_cli(cli: str, env: dict[str, str], cwd: Path, prompt: str, *extra: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [cli, "-m", MODEL, "-o", "json", "-p", prompt, *extra],
        env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )


def _log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- #
# server unit tests (urllib)
# --------------------------------------------------------------------------- #
@pytest.mark.fast
def test_sse_stream_shape(fake_gemini_api: FakeGeminiAPI) -> None:
    status, ctype, raw = _post(
        fake_gemini_api.base_url, f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        _contents(MARKDOWN_PROMPT))
    assert status == 200 and ctype.startswith("text/event-stream")
    frames = raw.decode().split("\r\n\r\n")
    assert frames[-1] == ""
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert all(f.startswith("data: ") for f in frames[:-1]) and len(chunks) >= 2
    assert all("usageMetadata" not in c for c in chunks[:-1])
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == render_fake_response(MARKDOWN_PROMPT)
    lines = text.splitlines()
    assert lines[0] == f"# ai_news_scan ({FAKE_LABEL})"
    assert [ln for ln in lines if ln.startswith("## ")] == ["## Top Stories", "## Why It Matters", "## Sources"]
    p, c = count_tokens(MARKDOWN_PROMPT), count_tokens(text)
    assert last["usageMetadata"] == {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
    [rec] = fake_gemini_api.requests
    assert rec["model"] == MODEL and rec["status"] == 200 and rec["response_text"] == text
    assert rec["prompt"] == MARKDOWN_PROMPT and rec["usage"] == last["usageMetadata"]


@pytest.mark.fast
def test_generate_content_json_and_html(fake_gemini_api: FakeGeminiAPI, tmp_path: Path) -> None:
    status, _, raw = _post(fake_gemini_api.base_url, f"/v1beta/models/{MODEL}:generateContent",
                           _contents(JSON_PROMPT))
    assert status == 200
    body = json.loads(raw)
    payload = _unfence_json(body["candidates"][0]["content"]["parts"][0]["text"])
    assert set(payload) == {"tags", "categories"}
    assert payload["categories"] == ["models", "agents", "safety", "hardware"]
    tags = payload["tags"]
    assert len(tags) == len(set(tags)) == 6 and "fake-gemini-demo" in tags
    assert all(t == t.lower() and 0 < len(t) <= 24 for t in tags)
    assert body["usageMetadata"]["totalTokenCount"] == (
        body["usageMetadata"]["promptTokenCount"] + body["usageMetadata"]["candidatesTokenCount"])

    status, _, raw = _post(fake_gemini_api.base_url, f"/v1beta/models/{MODEL}:generateContent",
                           _contents(HTML_PROMPT))
    html_text = json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]
    assert status == 200 and html_text.startswith("<section") and html_text.endswith("</section>")
    assert FAKE_LABEL in html_text and "<script" not in html_text.lower()

    # deterministic: same prompt -> same answer; log file mirrors memory
    assert render_fake_response(JSON_PROMPT) == render_fake_response(JSON_PROMPT)
    assert _log_lines(tmp_path / "fake_gemini_requests.jsonl") == fake_gemini_api.requests
    assert len(fake_gemini_api.requests) == 2


@pytest.mark.fast
def test_count_tokens_404_and_contract_parsing(fake_gemini_api: FakeGeminiAPI) -> None:
    status, _, raw = _post(fake_gemini_api.base_url, f"/v1beta/models/{MODEL}:countTokens",
                           _contents("x" * 9))
    assert status == 200 and json.loads(raw) == {"totalTokens": 3}
    status, _, raw = _post(fake_gemini_api.base_url, "/v1beta/nope", {})
    err = json.loads(raw)["error"]
    assert status == 404 and err["code"] == 404 and err["status"] == "NOT_FOUND" and err["message"]
    assert [r["status"] for r in fake_gemini_api.requests] == [200, 404]
    assert parse_prompt_contract("no markers") == {
        "prompt_id": "unlabelled-prompt", "format": "markdown", "sections": [], "categories": [], "sentences": []}
    generic = render_fake_response("NEUROHELIX PROMPT: p1\nRESPONSE FORMAT: markdown\n")
    # the header wins over markers inside pasted source material
    c = parse_prompt_contract(JSON_PROMPT + "\n=== SOURCE 1 ===\nNEUROHELIX PROMPT: other\nRESPONSE FORMAT: html\n")
    assert (c["prompt_id"], c["format"]) == ("tag_report", "json")
    assert generic.startswith(f"# p1 ({FAKE_LABEL})") and generic.count("\n## ") >= 2


@pytest.mark.fast
def test_fail_first_and_latency(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with FailingGeminiAPI(fail_first=2, latency_s=0.2, log_path=log) as api:
        path = f"/v1beta/models/{MODEL}:generateContent"
        t0 = time.monotonic()
        results = [_post(api.base_url, path, _contents("hi")) for _ in range(3)]
        assert time.monotonic() - t0 >= 0.6
    assert [r[0] for r in results] == [429, 429, 200]
    assert json.loads(results[0][2]) == {"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED"}}
    assert [r["status"] for r in _log_lines(log)] == [429, 429, 200]


# --------------------------------------------------------------------------- #
# the real gemini CLI against the fake server
# --------------------------------------------------------------------------- #
@pytest.mark.real_cli
def test_cli_success_matches_server(gemini_cli_path: str, gemini_api_env: dict[str, str],
                                    fake_gemini_api: FakeGeminiAPI, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    proc = _run_cli(gemini_cli_path, gemini_api_env, cwd, MARKDOWN_PROMPT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"session_id", "response", "stats"}

    # exactly one HTTP request per prompt, streamed via SSE
    [rec] = _log_lines(tmp_path / "fake_gemini_requests.jsonl")
    assert rec["path"] == f"/v1beta/models/{MODEL}:streamGenerateContent" and rec["status"] == 200
    assert MARKDOWN_PROMPT in rec["prompt"]          # CLI prepends a <session_context> part
    assert rec["prompt"].startswith("<session_context>")
    assert out["response"] == rec["response_text"]

    # token stats land in stats.models[<modelVersion>].tokens (and .roles.main.tokens)
    stats = out["stats"]["models"][MODEL]
    usage = rec["usage"]
    for where in (stats["tokens"], stats["roles"]["main"]["tokens"]):
        assert where["input"] == where["prompt"] == usage["promptTokenCount"]
        assert where["candidates"] == usage["candidatesTokenCount"]
        assert where["total"] == usage["totalTokenCount"]
    assert stats["api"]["totalRequests"] == 1 and stats["api"]["totalErrors"] == 0

    # nothing is written into the cwd; state goes to $HOME/.gemini
    assert list(cwd.iterdir()) == []
    home = Path(gemini_api_env["HOME"]) / ".gemini"
    assert (home / "projects.json").is_file()
    assert list((home / "tmp").glob("*/chats/session-*.jsonl"))


@pytest.mark.real_cli
def test_cli_json_prompt_is_fenced(gemini_cli_path: str, gemini_api_env: dict[str, str],
                                   fake_gemini_api: FakeGeminiAPI, tmp_path: Path) -> None:
    proc = _run_cli(gemini_cli_path, gemini_api_env, tmp_path / "work", JSON_PROMPT)
    assert proc.returncode == 0, proc.stderr
    payload = _unfence_json(json.loads(proc.stdout)["response"])
    assert payload["categories"] == ["models", "agents", "safety", "hardware"]
    assert len(fake_gemini_api.requests) == 1


@pytest.mark.real_cli
def test_cli_retries_429(gemini_cli_path: str, gemini_env_factory, tmp_path: Path) -> None:
    with FailingGeminiAPI(fail_first=1) as api:
        env = gemini_env_factory(api.base_url)
        proc = _run_cli(gemini_cli_path, env, tmp_path / "work", MARKDOWN_PROMPT)
        reqs = api.requests
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in reqs] == [429, 200]
    gap = reqs[1]["time"] - reqs[0]["time"]
    # The CLI backs off 5 s +-30 % before its one retry ([429, 200] above); the upper bound only
    # says it did not wait for something else, and leaves room for a busy machine.
    assert 3.0 <= gap <= 20.0, gap
    assert "failed with status 429" in proc.stderr and "status: 429" in proc.stderr
    out = json.loads(proc.stdout)
    api_stats = out["stats"]["models"][MODEL]["api"]
    assert api_stats["totalRequests"] == 2 and api_stats["totalErrors"] == 1
    assert out["response"] == reqs[1]["response_text"]


@pytest.mark.real_cli
def test_cli_persistent_429_exit_code(gemini_cli_path: str, gemini_env_factory,
                                      tmp_path: Path) -> None:
    # general.maxAttempts=1 disables the internal retry (default 10 attempts, ~3.5 min)
    with FailingGeminiAPI(fail_first=1000) as api:
        env = gemini_env_factory(api.base_url, settings={"general": {"maxAttempts": 1}})
        proc = _run_cli(gemini_cli_path, env, tmp_path / "work", "hello")
        assert len(api.requests) == 1
    assert proc.returncode == 429 % 256 == 173       # process.exit(429) truncated to 8 bits
    assert proc.stdout == ""
    # stderr = retry log + stack trace, then the -o json error object last
    err = json.loads(proc.stderr[proc.stderr.rindex('{\n  "session_id"'):])
    assert err["error"]["code"] == 429 and "exhausted" in err["error"]["message"]
    assert list(Path(env["TMPDIR"]).glob("gemini-client-error-*.json"))


@pytest.mark.real_cli
def test_cli_missing_api_key_exits_41(gemini_cli_path: str, gemini_env_factory,
                                      fake_gemini_api: FakeGeminiAPI, tmp_path: Path) -> None:
    env = gemini_env_factory(fake_gemini_api.base_url, api_key=None)
    proc = _run_cli(gemini_cli_path, env, tmp_path / "work", "hello")
    assert proc.returncode == 41
    assert proc.stdout == ""                    # the error JSON goes to stderr
    err = json.loads(proc.stderr)["error"]
    assert err["code"] == 41 and err["type"] == "Error" and "GEMINI_API_KEY" in err["message"]
    assert fake_gemini_api.requests == []


@pytest.mark.real_cli
def test_cli_untrusted_folder_exits_55_unless_skip_trust(
        gemini_cli_path: str, gemini_env_factory, fake_gemini_api: FakeGeminiAPI,
        tmp_path: Path) -> None:
    env = gemini_env_factory(fake_gemini_api.base_url, trust=False)
    proc = _run_cli(gemini_cli_path, env, tmp_path / "work", "hello")
    assert proc.returncode == 55
    assert proc.stdout == "" and "not running in a trusted directory" in proc.stderr
    assert fake_gemini_api.requests == []

    proc = _run_cli(gemini_cli_path, env, tmp_path / "work", "hello", "--skip-trust")
    assert proc.returncode == 0, proc.stderr
    assert len(fake_gemini_api.requests) == 1


@pytest.mark.real_cli
def test_cli_search_loop_grounds_the_answer(gemini_cli_path: str, gemini_env_factory,
                                           fake_gemini_api: FakeGeminiAPI, tmp_path: Path) -> None:
    """With google_web_search declared, one CLI call is three requests on two models, as with the
    real API: the call, the grounded search on the CLI's web-search model, the answer citing it."""
    env = gemini_env_factory(fake_gemini_api.base_url, settings={"tools": {"core": ["google_web_search"]}})
    proc = _run_cli(gemini_cli_path, env, tmp_path / "work", MARKDOWN_PROMPT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    kinds = [(r["path"].split("/models/")[1].split(":")[0], r["kind"]) for r in fake_gemini_api.requests]
    assert kinds == [(MODEL, "function_call"), ("gemini-3-flash-preview", "search"), (MODEL, "streamGenerateContent")]
    search = fake_gemini_api.requests[1]
    assert search["tools"] == ["googleSearch"]
    models = out["stats"]["models"]
    assert models[MODEL]["api"]["totalRequests"] == 2
    assert models["gemini-3-flash-preview"]["api"]["totalRequests"] == 1
    # The grounding sources went into the functionResponse and came back in the answer, named by
    # the redirect links Google's grounding hands out (served by the fake, 302 to its article).
    assert "## Sources" in out["response"]
    assert f"{fake_gemini_api.base_url}/grounding-api-redirect/AUZIYQ" in out["response"]


def _grounding_links(api: FakeGeminiAPI) -> list[str]:
    """Ask the fake's web-search model as the CLI's google_web_search does, and read its chunks."""
    body = {"contents": [{"role": "user", "parts": [{"text": "open model releases"}]}], "tools": [{"googleSearch": {}}]}
    request = urllib.request.Request(
        f"{api.base_url}/v1beta/models/gemini-3-flash-preview:generateContent",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        meta = json.load(response)["candidates"][0]["groundingMetadata"]
    assert meta["webSearchQueries"] == ["open model releases"]
    return [chunk["web"]["uri"] for chunk in meta["groundingChunks"]]


class _NoFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.build_opener(_NoFollow()).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as answer:
        with answer:
            return answer.code, answer.headers.get("Location") or ""


@pytest.mark.fast
def test_grounding_links_redirect_to_an_article_then_expire(tmp_path: Path) -> None:
    """Like Google's grounding-api-redirect links: 302 to the article while fresh, 404 once expired;
    the article itself stays up."""
    with FakeGeminiAPI() as api:
        links = _grounding_links(api)
        assert len(links) == 3 and all("/grounding-api-redirect/AUZIYQ" in u for u in links)
        status, location = _get(links[0])
        assert status == 302 and location.startswith(f"{api.base_url}/articles/")
        assert _get(location)[0] == 200 and "fake Gemini API" in _get(location)[1]
        api.web.expire_redirects()
        assert _get(links[0])[0] == 404
        assert _get(location)[0] == 200
    with FakeGeminiAPI(redirect_ttl_s=0.2) as api:
        link = _grounding_links(api)[0]
        assert _get(link)[0] == 302
        time.sleep(0.4)
        assert _get(link)[0] == 404


@pytest.mark.dagster
@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_the_demo_api_stops_on_sigterm_even_when_its_parent_ignores_it(inherited: str) -> None:
    """``scripts/dev.sh --demo`` stops it with SIGTERM; a parent that ignores SIGTERM (nohup'd shells,
    supervisors, test workers) hands the ignore down, and the demo must still stop, not hold its port."""
    def start() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if inherited == "ignored" else signal.SIG_DFL)

    demo = subprocess.Popen(
        [sys.executable, "-m", "nh_assets.demo", "--port", "0"], stdout=subprocess.PIPE, text=True, preexec_fn=start
    )
    try:
        url = demo.stdout.readline().strip()
        assert _get(f"{url}/v1beta/models")[0] in (200, 404)  # serving
        demo.terminate()
        assert demo.wait(timeout=30) == 0
    finally:
        demo.kill()
        demo.wait()
