"""Each child process sees only its allow-list: a real child dumps the environment it was given."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from nh_assets.gemini.call import ModelCall
from nh_assets.child_env import GEMINI_CLI, PASSTHROUGH_ENV, SITE_BUILD, WRANGLER, child_env
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.publishing.wrangler import WranglerResource
from nh_assets_tests.support.fakes import gemini_config, install_fake

pytestmark = pytest.mark.fast

ENV_DUMP = "nh_assets_tests.support.fakes.env_dump"
SECRETS = {
    "GEMINI_API_KEY": "AIzaSy-gemini-key-0001",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/vertex-sa.json",
    "CLOUDFLARE_API_TOKEN": "cf-token-0002-never-for-gemini",
    "NH_ALERT_WEBHOOK": "https://hooks.slack.example/services/T0/B0/webhook0003",
    "NH_POSTGRES_URL": "postgresql+psycopg2://nh:pg-pass-0004@db:5432/nh",
    "NH_RATE_LIMIT_POSTGRES_URL": "postgresql://nh:bucket-pass-0005@db:5432/nh",
    "NH_CELERY_BROKER": "redis://:broker-pass-0006@broker:6379/0",
    "NH_CELERY_BACKEND": "redis://:backend-pass-0007@broker:6379/0",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-0008",
    "SOME_UNRELATED_SETTING": "unlisted-value-0009",
}
BASICS = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC", "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "local"}


@pytest.fixture
def environment(monkeypatch):
    for name, value in {**SECRETS, **BASICS, "GOOGLE_CLOUD_PROJECT": "nh-project"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(PASSTHROUGH_ENV, raising=False)


def _dump(executable: Path) -> dict[str, str]:
    return json.loads(Path(f"{executable}.env.json").read_text())


def _leaked(seen: dict[str, str], allowed: set[str]) -> set[str]:
    """Secret names whose value appears anywhere in ``seen``, other than those ``allowed``."""
    everything = "\n".join(f"{k}={v}" for k, v in seen.items())
    return {name for name, value in SECRETS.items() if name not in allowed and value in everything}


def test_the_gemini_cli_sees_its_auth_and_the_basics_and_no_other_secret(tmp_path, environment):
    cli = install_fake(tmp_path / "bin" / "gemini", ENV_DUMP)
    resource = GeminiCLIResource(
        config=gemini_config(
            tmp_path, gemini_cli=str(cli), gemini_transport="oneshot", rate_limit_db=str(tmp_path / "rate.sqlite"),
            workdir_root=str(tmp_path / "w"),
        )
    )
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        result = resources.gemini.generate(context, prompt="p", call=ModelCall(model="gemini-2.5-flash", timeout_s=30))
    assert result.response.startswith("# env dump")
    seen = _dump(cli)
    assert _leaked(seen, {"GEMINI_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"}) == set()
    assert seen["GEMINI_API_KEY"] == SECRETS["GEMINI_API_KEY"] and seen["GOOGLE_CLOUD_PROJECT"] == "nh-project"
    # The CLI reaches its rate gates on loopback: loopback is added to the operator's proxy exceptions.
    assert seen["no_proxy"] == "local,127.0.0.1,localhost"
    assert {k: seen[k] for k in BASICS if k != "no_proxy"} == {k: v for k, v in BASICS.items() if k != "no_proxy"}
    assert "PATH" in seen and seen["GEMINI_CLI_NO_RELAUNCH"] == "true"


def test_wrangler_sees_the_cloudflare_token_and_the_build_sees_no_secret(tmp_path, environment):
    wrangler = install_fake(tmp_path / "bin" / "wrangler", ENV_DUMP)
    build = install_fake(tmp_path / "bin" / "site-build", ENV_DUMP)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>site</p>")
    resource = WranglerResource(
        cli_path=str(wrangler), site_dir=str(site), build_command=str(build), build_cwd=str(tmp_path),
        api_token=SECRETS["CLOUDFLARE_API_TOKEN"],
    )
    deployment = resource.deploy()
    assert deployment.deployment_id == "0123abcd"
    seen_by_wrangler, seen_by_build = _dump(wrangler), _dump(build)
    assert _leaked(seen_by_wrangler, {"CLOUDFLARE_API_TOKEN"}) == set()
    assert seen_by_wrangler["CLOUDFLARE_API_TOKEN"] == SECRETS["CLOUDFLARE_API_TOKEN"]
    assert _leaked(seen_by_build, set()) == set()
    for seen in (seen_by_wrangler, seen_by_build):
        assert {k: seen[k] for k in BASICS} == BASICS and "PATH" in seen


@pytest.mark.parametrize("allowed", [GEMINI_CLI, WRANGLER, SITE_BUILD])
def test_the_operator_passthrough_adds_names_and_prefixes(allowed):
    env = {"PATH": "/bin", "CORP_CA": "x", "CORP_PROXY_USER": "y", "OTHER": "z", PASSTHROUGH_ENV: "CORP_CA, CORP_PROXY_*"}
    kept = child_env(allowed, env)
    assert {"PATH", "CORP_CA", "CORP_PROXY_USER"} <= set(kept) and "OTHER" not in kept
