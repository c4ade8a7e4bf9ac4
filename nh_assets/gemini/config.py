"""The one Gemini configuration: what every call is made with, one-shot or on a warm CLI.

Built from the operator's ``Settings`` under the settings' own field names (``from_settings``),
so a variable is declared, described and defaulted once; the resource holds it whole, the
one-shot call reads it, and the warm CLI service is started with it. It is a ``dg.Config``:
frozen, shown as the resource's config, and the Postgres bucket's URL arrives as ``dg.EnvVar``,
resolved in each step from its environment, so the password never enters run config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from nh_assets.settings import Settings


def _as_in_settings(name: str) -> object:
    """A field read from ``Settings``: required here, described there."""
    return Field(description=Settings.model_fields[name].description)


class GeminiConfig(dg.Config):
    gemini_cli: str = _as_in_settings("gemini_cli")
    demo: bool = _as_in_settings("demo")
    gemini_api_url: str = _as_in_settings("gemini_api_url")
    rate_per_minute: int = _as_in_settings("rate_per_minute")
    rate_per_day: int = _as_in_settings("rate_per_day")
    rate_limit_db: str = _as_in_settings("rate_limit_db")
    rate_limit_backend: str = _as_in_settings("rate_limit_backend")
    max_gemini_processes: int = _as_in_settings("max_gemini_processes")
    gemini_transport: Literal["acp", "oneshot"] = _as_in_settings("gemini_transport")
    workdir_root: str = _as_in_settings("workdir_root")
    system_prompt: str = _as_in_settings("system_prompt")
    rate_limit_bucket_url: str = Field(
        default="",
        description="The Postgres bucket's URL, given as dg.EnvVar naming NH_POSTGRES_URL or "
        "NH_RATE_LIMIT_POSTGRES_URL; empty for SQLite.",
    )

    model_quotas: dict[str, list[int]] = Field(
        default_factory=dict, description="model: [per_minute, per_day], from the registry's quotas.tsv."
    )

    # Tuning with no operator variable; tests shorten it.
    process_permits_dir: str = Field(default="", description="Process permit files; empty: beside rate_limit_db.")
    skip_trust: bool = Field(default=True, description="Pass --skip-trust: the per-call directory is ours and empty.")
    no_relaunch: bool = Field(
        default=True, description="Set GEMINI_CLI_NO_RELAUNCH: the CLI otherwise re-execs a second node process."
    )
    retry_base_s: float = Field(default=5.0, description="First retry delay; doubles per retry, with jitter.")
    rate_limit_backoff_s: float = Field(default=120.0, description="First delay after a 429; doubles per retry.")
    kill_grace_s: float = Field(default=5.0, description="Seconds between SIGTERM and SIGKILL on timeout.")
    warm_cli_idle_s: float = Field(default=120.0, description="Seconds an idle warm CLI, and the service, stay up.")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> GeminiConfig:
        """``overrides`` set fields directly (tests and benchmarks shorten backoffs)."""
        shared = {name: getattr(settings, name) for name in cls.model_fields if name in Settings.model_fields}
        fields: dict[str, object] = {name: str(v) if isinstance(v, Path) else v for name, v in shared.items()}
        if settings.rate_limit_url_env:
            fields["rate_limit_bucket_url"] = dg.EnvVar(settings.rate_limit_url_env)
        return cls(**{**fields, **overrides})

    @property
    def permits_dir(self) -> Path:
        return Path(self.process_permits_dir or Path(self.rate_limit_db).parent / "gemini_process_permits")

    @property
    def warm_cli_dir(self) -> Path:
        """Where the warm CLI services of this bucket listen, one socket per service key."""
        return Path(self.rate_limit_db).resolve().parent / "gemini_warm_cli"
