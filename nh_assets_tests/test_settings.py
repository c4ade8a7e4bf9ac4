"""The settings as an operator meets them: one declaration per variable, derived defaults, one-line
errors that name the variable and never show a secret."""

from __future__ import annotations

import os

import pytest

from nh_assets.cli.config import VARIABLES
from nh_assets.settings import Settings, SettingsError, is_secret, load_settings

pytestmark = pytest.mark.fast

SECRET = "postgresql+psycopg2://nh:pw-QXJ9-secret@db.internal:5432/nh"


def test_every_field_names_its_variable_once_and_nh_config_lists_it():
    variables = [str(field.validation_alias) for field in Settings.model_fields.values()]
    assert all(variables) and len(set(variables)) == len(variables)
    for name, field in Settings.model_fields.items():
        # The description starts with the variable, so `nh config` and the docs read one source.
        assert (field.description or "").startswith(f"{field.validation_alias}: "), name
    listed = {v.name: v for v in VARIABLES}
    assert set(variables) <= set(listed)
    assert {listed[v].field for v in variables} == set(Settings.model_fields)


def test_secrets_are_secret_strings_hidden_from_repr_and_errors():
    secret_fields = {name for name, field in Settings.model_fields.items() if is_secret(field)}
    assert {"postgres_url", "cloudflare_api_token", "alert_webhook", "celery_broker"} <= secret_fields
    settings = load_settings({"NH_POSTGRES_URL": SECRET, "CLOUDFLARE_API_TOKEN": "cf-QXJ8-token"})
    assert SECRET not in repr(settings) and "cf-QXJ8-token" not in repr(settings)
    assert settings.cloudflare_token_set and settings.rate_limit_url_env == "NH_POSTGRES_URL"
    with pytest.raises(SettingsError) as bad:
        load_settings({"NH_POSTGRES_URL": SECRET.replace("+psycopg2", ""), "NH_SCHEDULE_HOUR": "x"})
    message = str(bad.value)
    assert "pw-QXJ9-secret" not in message and "\n" not in message
    assert "NH_POSTGRES_URL: must start with postgresql+psycopg2://" in message
    assert "NH_SCHEDULE_HOUR: Input should be a valid integer" in message and "set it to a whole number" in message
    # Only the bad variables: not the defaults derived from them.
    assert "default factory" not in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"NH_DEMO": "maybe"}, "NH_DEMO: Input should be a valid boolean, unable to interpret input; set it to 1 or 0"),
        ({"NH_TIMEZONE": "Mars/Olympus"}, "NH_TIMEZONE: unknown time zone 'Mars/Olympus'; use an IANA name"),
        ({"NH_PARTITION_START": "yesterday"}, "NH_PARTITION_START: Input should be a valid date"),
        ({"NH_GEMINI_TRANSPORT": "websocket"}, "NH_GEMINI_TRANSPORT: must be acp or oneshot"),
        ({"NH_SYSTEM_PROMPT": "/nonexistent/prompt.md"}, "NH_SYSTEM_PROMPT: /nonexistent/prompt.md is missing or empty"),
        ({"NH_DEMO": "1"}, "NH_DEMO=1 needs the demo API"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_the_fix(env, expected):
    with pytest.raises(SettingsError) as bad:
        load_settings(env)
    assert str(bad.value).startswith("bad NeuroHelix settings: ")
    assert expected in str(bad.value) and "\n" not in str(bad.value)


def test_defaults_follow_the_variables_they_derive_from(tmp_path):
    settings = load_settings({
        "DAGSTER_HOME": str(tmp_path / "home"), "NH_DATA_ROOT": str(tmp_path / "data"),
        "NH_CLOUDFLARE_PROJECT": "nh-staging", "TZ": ":Europe/Paris",
        "NH_GEMINI_TRANSPORT": " OneShot ", "CLOUDFLARE_API_TOKEN": "   ", "NH_RETENTION_DAYS": "",
    })
    assert settings.rate_limit_db == tmp_path / "home" / "nh_gemini_rate_limit.sqlite"
    assert settings.workdir_root == tmp_path / "home" / "gemini_workdirs"
    assert settings.site_dir == tmp_path / "data" / "site"
    assert settings.site_url == "https://nh-staging.pages.dev"
    assert settings.timezone == "Europe/Paris" and settings.gemini_transport == "oneshot"
    # Blank means unset: no token (no deployment), the default retention.
    assert not settings.cloudflare_token_set and settings.retention_days == 90
    assert load_settings({"TZ": "/etc/localtime"}).timezone == "UTC"


def test_the_given_environment_is_the_only_source(monkeypatch):
    monkeypatch.setenv("NH_RATE_PER_DAY", "7")
    assert load_settings().rate_per_day == 7
    assert load_settings({}).rate_per_day == 1000
    assert load_settings(dict(os.environ, NH_RATE_PER_DAY="9")).rate_per_day == 9


@pytest.mark.parametrize(
    ("password", "refused"),
    [("p@ss", "its password holds a raw @"), ("p%40ss", None), ("p/s#s?", None)],
)
def test_a_storage_url_is_read_as_dagster_will_read_it(password, refused):
    """Dagster's storage parses NH_POSTGRES_URL with SQLAlchemy, whose password ends at the first @."""
    env = {"NH_POSTGRES_URL": f"postgresql+psycopg2://nh:{password}-QXJ7@db.internal:5432/nh"}
    if refused is None:
        assert load_settings(env).rate_limit_url_env == "NH_POSTGRES_URL"
        return
    with pytest.raises(SettingsError) as bad:
        load_settings(env)
    assert f"NH_POSTGRES_URL: {refused}" in str(bad.value) and "%40" in str(bad.value)
    assert "QXJ7" not in str(bad.value)


def test_an_unreadable_storage_url_is_refused_without_quoting_it():
    with pytest.raises(SettingsError) as bad:
        load_settings({"NH_POSTGRES_URL": "postgresql+psycopg2://nh:pw-QXJ6@db.internal:port/nh"})
    assert "NH_POSTGRES_URL: is not a URL Dagster's storage can read" in str(bad.value)
    assert "QXJ6" not in str(bad.value)
