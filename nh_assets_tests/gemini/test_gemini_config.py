"""The one Gemini configuration: built from the settings under their own names, frozen, and the
same object on both sides of the warm CLI service's pipe."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from nh_assets.gemini.config import GeminiConfig
from nh_assets.gemini.warm_cli.client import ServiceStart
from nh_assets.settings import Settings, load_settings

pytestmark = pytest.mark.fast


def test_every_shared_field_is_the_settings_value_and_the_transport_default_is_the_settings_default(tmp_path):
    env = {"DAGSTER_HOME": str(tmp_path), "NH_GEMINI_CLI": "/opt/gemini", "NH_MAX_GEMINI_PROCESSES": "3"}
    settings = load_settings(env)
    config = GeminiConfig.from_settings(settings)
    shared = [name for name in GeminiConfig.model_fields if name in Settings.model_fields]
    assert len(shared) >= 10
    for name in shared:
        value = getattr(settings, name)
        assert getattr(config, name) == (str(value) if isinstance(value, Path) else value), name
    assert config.gemini_transport == Settings.model_fields["gemini_transport"].default == "acp"
    assert config.max_gemini_processes == 3 and config.gemini_cli == "/opt/gemini"
    assert config.rate_limit_bucket_url == ""  # SQLite: no URL at all


def test_it_is_frozen_and_a_field_the_settings_lack_is_refused(tmp_path):
    config = GeminiConfig.from_settings(load_settings({"DAGSTER_HOME": str(tmp_path)}))
    with pytest.raises(dg.DagsterInvalidInvocationError, match="frozen"):
        config.gemini_transport = "oneshot"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        GeminiConfig(gemini_cli="gemini")  # the rest comes from the settings, never from defaults here


def test_the_postgres_bucket_url_is_an_environment_variable_never_a_value(tmp_path):
    url = "postgresql+psycopg2://nh:hunter22@db:5432/nh"
    config = GeminiConfig.from_settings(load_settings({"DAGSTER_HOME": str(tmp_path), "NH_POSTGRES_URL": url}))
    assert isinstance(config.rate_limit_bucket_url, dg.EnvVar) and config.rate_limit_bucket_url == "NH_POSTGRES_URL"
    assert "hunter22" not in repr(config)


def test_the_warm_cli_service_is_started_with_the_same_configuration(tmp_path):
    config = GeminiConfig.from_settings(load_settings({"DAGSTER_HOME": str(tmp_path)}), kill_grace_s=1.5)
    start = ServiceStart(config, "/opt/gemini", {"GEMINI_API_KEY": "k1"}, {"GOOGLE_GEMINI_BASE_URL": "http://x"}, ["k1"])
    back = ServiceStart.from_json(start.to_json())
    assert back == start and back.gemini.kill_grace_s == 1.5 and back.key == start.key
    # Another credential is another process configuration, hence another service; the key names no secret.
    other = ServiceStart(config, "/opt/gemini", {"GEMINI_API_KEY": "k2"}, {"GOOGLE_GEMINI_BASE_URL": "http://x"}, ["k2"])
    assert other.key != start.key and "k1" not in start.key
