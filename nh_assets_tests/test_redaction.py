"""The one redaction helper: every URL form of a password, every secret of the environment, and
never the model's answer."""

from __future__ import annotations

import json
import stat
import sys

import dagster as dg
import pytest

from nh_assets.gemini.call import ModelCall
from nh_assets.gemini.rate_limit_stores import PostgresStore, RateLimitStoreError
from nh_assets.gemini.resource import GeminiCLIResource
from nh_assets.redaction import Redactor, redact, redact_url, secret_values
from nh_assets_tests.support.dagster_server import free_port
from nh_assets_tests.support.fakes import gemini_config

pytestmark = pytest.mark.fast

PASSWORD_FORMS = [
    # (text, the secret it must lose, what must survive)
    ("postgresql://nh:s3cret@db.internal:5432/nh", "s3cret", "postgresql://nh:***@db.internal:5432/nh"),
    ("postgresql+psycopg2://nh:pa/ss#wo?rd@db:5432/nh", "pa/ss#wo?rd", "@db:5432/nh"),
    ("postgresql://nh:p@ss@w0rd@db/nh", "p@ss@w0rd", "postgresql://nh:***@db/nh"),
    ("postgresql://nh:p%40ss%2Fw%23rd@db/nh", "p%40ss%2Fw%23rd", "postgresql://nh:***@db/nh"),
    ("redis://:brokerpw@broker:6379/0", "brokerpw", "redis://:***@broker:6379/0"),
    ("postgresql://nh@db:5432/nh?password=qu3ry&sslmode=require", "qu3ry", "sslmode=require"),
    ("postgresql://db/nh?sslmode=require&sslpassword=k3ypass", "k3ypass", "sslmode=require"),
    ("host=db port=5432 user=nh password=kw0rd dbname=nh", "kw0rd", "dbname=nh"),
    ("host=db password='sp ace\\'d' dbname=nh", "sp ace", "dbname=nh"),
    ("connection to 'postgresql://nh:quoted1@db/nh' failed", "quoted1", "failed"),
    ('{"password": "js0n pw", "user": "nh"}', "js0n pw", '"user": "nh"'),
    ("PGPASSWORD=envl1ne psql", "envl1ne", "psql"),
    ("GET https://generativelanguage.googleapis.com/v1/models?key=AIzaQuery1&alt=json", "AIzaQuery1", "alt=json"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), PASSWORD_FORMS)
def test_every_url_and_dsn_password_form_is_removed(text, secret, kept):
    clean = redact(text, env={})
    assert secret not in clean and "***" in clean and kept in clean


def test_text_without_secrets_is_unchanged():
    text = "input_tokens: 512, partition_key=2026-11-20, https://example.org:443/a?b=c, pass 3 of 5"
    assert redact(text, env={}) == text


def test_every_secret_value_of_the_environment_in_raw_and_decoded_forms():
    env = {
        "GEMINI_API_KEY": "AIzaSy-k3y",
        "CLOUDFLARE_API_TOKEN": "cf-t0ken",
        "NH_ALERT_WEBHOOK": "https://hooks.example/services/T/B/w3bhook",
        "NH_POSTGRES_URL": "postgresql+psycopg2://nh:p%40ss%2Fword@db/nh",
        "NH_CELERY_BROKER": "redis://:br0ker@redis:6379/0",
        "NH_DEMO": "1",
        "SOME_KEY": "true",  # a flag, not a secret: masking every "true" would reveal nothing
        "HOME": "/root",
    }
    assert {"AIzaSy-k3y", "cf-t0ken", "p%40ss%2Fword", "p@ss/word", "br0ker", env["NH_ALERT_WEBHOOK"]} <= secret_values(env)
    text = (
        "key AIzaSy-k3y token cf-t0ken posted to https://hooks.example/services/T/B/w3bhook; "
        "psycopg says password p@ss/word was refused; broker br0ker; flag true; home /root"
    )
    clean = redact(text, env=env)
    for value in ("AIzaSy-k3y", "cf-t0ken", "w3bhook", "p@ss/word", "br0ker"):
        assert value not in clean
    assert "flag true; home /root" in clean


def test_redact_url_keeps_everything_but_the_password():
    assert redact_url("postgresql://nh@db/nh") == "postgresql://nh@db/nh"
    assert redact_url("postgresql://nh:x/y@db:5432/nh") == "postgresql://nh:***@db:5432/nh"


def test_a_redactor_with_extra_values_masks_them_longest_first():
    redactor = Redactor(["abcd", "abcdef"])
    assert redactor("abcdef abcd") == "*** ***"


@pytest.mark.parametrize(
    "password", ["pa/ss", "pa#ss", "pa?ss", "p@ss", "p%2Fss"], ids=["slash", "hash", "question", "at", "encoded"]
)
def test_a_real_unreachable_bucket_never_prints_its_password(password, monkeypatch):
    """psycopg really parses (or refuses) the URL; the store's one-line error never holds the password."""
    monkeypatch.setattr("nh_assets.gemini.rate_limit_stores.CONNECT_TIMEOUT_S", 2.0)
    url = f"postgresql://nh:{password}word42@127.0.0.1:{free_port()}/nh"
    with pytest.raises(RateLimitStoreError) as caught:
        PostgresStore(url).open([])
    message = str(caught.value)
    assert f"{password}word42" not in message and "word42" not in message and "\n" not in message
    assert "127.0.0.1" in message or "***" in message


def test_the_models_answer_is_never_rewritten(tmp_path, monkeypatch):
    """Redaction is for logs and failures; an answer that quotes a URL or the key is data."""
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSy-answer-key")
    answer = "Connect with postgresql://demo:hunter2@db/x?password=p and key AIzaSy-answer-key."
    cli = tmp_path / "gemini"
    cli.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({json.dumps({'response': answer, 'stats': {}})}))\n")
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    resource = GeminiCLIResource(
        config=gemini_config(
            tmp_path, gemini_cli=str(cli), gemini_transport="oneshot", rate_limit_db=str(tmp_path / "rate.sqlite"),
            workdir_root=str(tmp_path / "w"),
        )
    )
    with dg.build_resources({"gemini": resource}) as resources, dg.build_asset_context() as context:
        result = resources.gemini.generate(context, prompt="p", call=ModelCall(model="gemini-2.5-flash", timeout_s=30))
    assert result.response == answer
