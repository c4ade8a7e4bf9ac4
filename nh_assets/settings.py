"""Operator settings read once, when the code location loads.

Everything an operator may change without touching code comes from environment variables,
declared here once (each field names its variable) and validated by pydantic-settings. Assets
never read ``os.environ`` themselves, so a materialization's behaviour is visible in its resource
config. Secrets are ``SecretStr``: the code location needs to know they are there, never to show
them; Dagster resolves their values at execution (``dg.EnvVar``), so they never enter run config.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REGISTRY_PATH = REPO_ROOT / "registry" / "prompts.tsv"
DEFAULT_SYSTEM_PROMPT_PATH = REPO_ROOT / "registry" / "system_prompt.md"
POSTGRES_URL_SCHEME = "postgresql+psycopg2://"
_POSTGRES_URL_FORM = f"{POSTGRES_URL_SCHEME}USER:PASSWORD@HOST:5432/DB"


class SettingsError(Exception):
    """A bad environment variable: the message names it and says how to fix it."""


# Fields that take one of a few words, with the words in the order the error message lists them.
_CHOICES = {
    "executor_start_method": ("forkserver", "spawn"),
    "executor": ("threads", "multiprocess", "celery"),
    "rate_limit_backend": ("sqlite", "postgres"),
    "gemini_transport": ("acp", "oneshot"),
}

# What to do about a value pydantic could not read, by its error type.
_FIXES = {
    "bool_parsing": "set it to 1 or 0",
    "int_parsing": "set it to a whole number",
    "date_from_datetime_parsing": "write it as YYYY-MM-DD",
}


def _problem(message: str) -> PydanticCustomError:
    """An error whose text is shown as written: it already names the variable and the fix."""
    return PydanticCustomError("nh_settings", message)


def _local_zone(tz: str) -> str:
    # NeuroHelix ran on the operator's local clock: honour TZ when it is an IANA name.
    tz = tz.lstrip(":")
    try:
        if tz:
            ZoneInfo(tz)
            return tz
    except (ZoneInfoNotFoundError, ValueError):
        pass
    return "UTC"


class Settings(BaseSettings):
    """One field per variable, in dependency order: a default may be derived from a field above it
    (``default_factory`` receives the values validated so far)."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, env_ignore_empty=True, str_strip_whitespace=True,
        validate_default=True, extra="ignore",
    )

    dagster_home: Path = Field(REPO_ROOT / "dagster_home", validation_alias="DAGSTER_HOME",
                               description="DAGSTER_HOME: the Dagster instance directory.")
    tz: str = Field("", validation_alias="TZ", description="TZ: the default of NH_TIMEZONE when an IANA name.")
    data_root: Path = Field(default_factory=lambda: Path.cwd() / "data", validation_alias="NH_DATA_ROOT",
                            description="NH_DATA_ROOT: root of the NeuroHelix data layout.")
    gemini_cli: str = Field("gemini", validation_alias="NH_GEMINI_CLI",
                            description="NH_GEMINI_CLI: path or name of the gemini executable.")
    demo: bool = Field(False, validation_alias="NH_DEMO",
                       description="NH_DEMO: the endpoint is the project's fake API; label every output as fake.")
    gemini_api_url: str = Field(
        "", validation_alias="NH_GEMINI_API_URL",
        description="NH_GEMINI_API_URL: a Gemini API endpoint instead of Google's (the demo's fake API, a proxy).",
    )
    partition_start: date = Field(date(2025, 11, 1), validation_alias="NH_PARTITION_START",
                                  description="NH_PARTITION_START: first daily partition.")
    timezone: str = Field(default_factory=lambda v: _local_zone(v.get("tz", "")), validation_alias="NH_TIMEZONE",
                          description="NH_TIMEZONE: IANA zone whose midnight starts a day (default: TZ, else UTC).")
    rate_per_minute: int = Field(50, ge=1, validation_alias="NH_RATE_PER_MINUTE",
                                 description="NH_RATE_PER_MINUTE: Gemini requests per minute.")
    rate_per_day: int = Field(1000, ge=1, validation_alias="NH_RATE_PER_DAY",
                              description="NH_RATE_PER_DAY: Gemini requests per day.")
    rate_limit_db: Path = Field(
        default_factory=lambda v: v.get("dagster_home", Path(".")) / "nh_gemini_rate_limit.sqlite",
        validation_alias="NH_RATE_LIMIT_DB", description="NH_RATE_LIMIT_DB: SQLite file shared by every process.",
    )
    postgres_url: SecretStr | None = Field(
        None, validation_alias="NH_POSTGRES_URL",
        description="NH_POSTGRES_URL: Dagster's Postgres storage, and the bucket's unless given its own.",
    )
    rate_limit_postgres_url: SecretStr | None = Field(
        None, validation_alias="NH_RATE_LIMIT_POSTGRES_URL",
        description="NH_RATE_LIMIT_POSTGRES_URL: a different database for the rate-limit bucket.",
    )
    rate_limit_backend: str = Field(
        # Postgres storage implies a Postgres bucket: an operator who moved to several machines
        # must not keep a per-machine limit by accident.
        default_factory=lambda v: "postgres" if v.get("rate_limit_postgres_url") or v.get("postgres_url") else "sqlite",
        validation_alias="NH_RATE_LIMIT_BACKEND",
        description="NH_RATE_LIMIT_BACKEND: sqlite (one machine) or postgres (every machine; the default "
        "when NH_POSTGRES_URL is set).",
    )
    workdir_root: Path = Field(
        default_factory=lambda v: v.get("dagster_home", Path(".")) / "gemini_workdirs",
        validation_alias="NH_WORKDIR_ROOT", description="NH_WORKDIR_ROOT: parent of the CLI's empty working dirs.",
    )
    system_prompt: Path = Field(DEFAULT_SYSTEM_PROMPT_PATH, validation_alias="NH_SYSTEM_PROMPT",
                                description="NH_SYSTEM_PROMPT: the system prompt every model call gets.")
    max_gemini_processes: int = Field(4, ge=1, validation_alias="NH_MAX_GEMINI_PROCESSES",
                                      description="NH_MAX_GEMINI_PROCESSES: CLI processes at once, machine-wide.")
    gemini_transport: Literal["acp", "oneshot"] = Field(
        "acp", validation_alias="NH_GEMINI_TRANSPORT",
        description="NH_GEMINI_TRANSPORT: acp (warm CLIs in ACP mode, one-shot when the warm CLI service cannot) or oneshot.",
    )
    executor: str = Field(
        "threads", validation_alias="NH_EXECUTOR",
        description="NH_EXECUTOR: threads (steps in threads of the run's process), multiprocess (a process "
        "per step on this machine) or celery (steps on Celery workers on any machine; broker in NH_CELERY_BROKER).",
    )
    celery_broker: SecretStr | None = Field(None, validation_alias="NH_CELERY_BROKER",
                                            description="NH_CELERY_BROKER: the Celery workers' broker URL.")
    executor_start_method: str = Field("forkserver", validation_alias="NH_EXECUTOR_START_METHOD",
                                       description="NH_EXECUTOR_START_METHOD: forkserver or spawn (NH_EXECUTOR=multiprocess).")
    executor_max_concurrent: int = Field(8, ge=1, validation_alias="NH_EXECUTOR_MAX_CONCURRENT",
                                         description="NH_EXECUTOR_MAX_CONCURRENT: steps of a run at once (threads or processes).")
    schedule_enabled: bool = Field(False, validation_alias="NH_SCHEDULE_ENABLED",
                                   description="NH_SCHEDULE_ENABLED: start the daily schedule running.")
    schedule_hour: int = Field(6, ge=0, le=23, validation_alias="NH_SCHEDULE_HOUR",
                               description="NH_SCHEDULE_HOUR: hour of the daily run (NH_TIMEZONE).")
    schedule_minute: int = Field(0, ge=0, le=59, validation_alias="NH_SCHEDULE_MINUTE",
                                 description="NH_SCHEDULE_MINUTE: minute of the daily run.")
    report_deadline_hour: int = Field(9, ge=0, le=23, validation_alias="NH_REPORT_DEADLINE_HOUR",
                                      description="NH_REPORT_DEADLINE_HOUR: today's report is late after this.")
    retention_days: int = Field(90, ge=1, validation_alias="NH_RETENTION_DAYS",
                                description="NH_RETENTION_DAYS: keep this many days of artifacts.")
    site_dir: Path = Field(default_factory=lambda v: v.get("data_root", Path(".")) / "site",
                           validation_alias="NH_SITE_DIR",
                           description="NH_SITE_DIR: the built site, a link to its latest build (DATA_ROOT/site).")
    cloudflare_project: str = Field("neurohelix", validation_alias="NH_CLOUDFLARE_PROJECT",
                                    description="NH_CLOUDFLARE_PROJECT: Cloudflare Pages project name.")
    site_url: str = Field(
        default_factory=lambda v: f"https://{v.get('cloudflare_project', 'neurohelix')}.pages.dev",
        validation_alias="NH_SITE_URL",
        description="NH_SITE_URL: public base URL of the site, for the feed and notifications.",
    )
    pagefind_cli: str = Field(str(REPO_ROOT / "node_modules" / ".bin" / "pagefind"), validation_alias="NH_PAGEFIND_CLI",
                              description="NH_PAGEFIND_CLI: path or name of the pagefind executable (search index).")
    site_build_command: str = Field("", validation_alias="NH_SITE_BUILD_COMMAND",
                                    description="NH_SITE_BUILD_COMMAND: optional command run before deploying.")
    wrangler_cli: str = Field("wrangler", validation_alias="NH_WRANGLER_CLI",
                              description="NH_WRANGLER_CLI: path or name of the wrangler executable.")
    cloudflare_api_token: SecretStr | None = Field(None, validation_alias="CLOUDFLARE_API_TOKEN",
                                                   description="CLOUDFLARE_API_TOKEN: deploy the site when set.")
    alert_webhook: SecretStr | None = Field(None, validation_alias="NH_ALERT_WEBHOOK",
                                            description="NH_ALERT_WEBHOOK: post failure alerts when set.")
    ui_url: str = Field("http://127.0.0.1:3000", validation_alias="NH_DAGSTER_UI_URL",
                        description="NH_DAGSTER_UI_URL: base URL of the Dagster UI, for links in alerts.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only what ``load_settings`` passes: it reads the environment it is given, so ``nh``
        (the environment plus ``.env``), preflight and the tests see exactly their own."""
        return (init_settings,)

    # -- one field at a time ------------------------------------------------------------------
    @field_validator("executor_start_method", "executor", "rate_limit_backend", "gemini_transport", mode="before")
    @classmethod
    def _one_of_choices(cls, value: Any, info: ValidationInfo) -> Any:
        choices = _CHOICES[info.field_name]
        word = value.strip().lower() if isinstance(value, str) else value
        if word not in choices:
            raise _problem(f"must be {' or '.join(choices)}")
        return word

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _problem(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from None
        return value

    @field_validator("dagster_home", "data_root")
    @classmethod
    def _resolved(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("site_dir")
    @classmethod
    def _absolute_not_resolved(cls, value: Path) -> Path:
        # Not resolved: the site directory is a link that each build replaces.
        return Path(os.path.abspath(value.expanduser()))

    @field_validator("system_prompt")
    @classmethod
    def _system_prompt_exists(cls, value: Path) -> Path:
        """The CLI would otherwise send its own 23 KB coding-agent prompt: a missing file is an
        error at load, not a silent fallback."""
        path = value.expanduser().resolve()
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            raise _problem(
                f"{path} is missing or empty — point it at a system prompt file "
                f"(the repo ships {DEFAULT_SYSTEM_PROMPT_PATH.relative_to(REPO_ROOT)})"
            )
        return path

    @field_validator("postgres_url", "rate_limit_postgres_url", "celery_broker", "cloudflare_api_token",
                     "alert_webhook", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("postgres_url")
    @classmethod
    def _postgres_driver_named(cls, value: SecretStr | None) -> SecretStr | None:
        """Dagster's Postgres storage reads NH_POSTGRES_URL through SQLAlchemy. SQLAlchemy 2.1 maps a
        bare ``postgresql://`` to psycopg 3, on which dagster-postgres 0.29's NOTIFY fails, so the
        driver must be named; caught here, where the message can say so, not deep in a run."""
        if value is None:
            return value
        url = value.get_secret_value()
        if not url.startswith(POSTGRES_URL_SCHEME):
            scheme = url.split("://", 1)[0] if "://" in url else "(none)"
            raise _problem(
                f"must start with {POSTGRES_URL_SCHEME} (got scheme {scheme!r}): write it as {_POSTGRES_URL_FORM}"
            )
        # SQLAlchemy ends the password at its first "@" (the bucket's parser takes the last), so
        # Dagster's storage would try a host named after the rest of the password.
        try:
            host = make_url(url).host or ""
        except Exception:  # SQLAlchemy's message quotes the URL, password and all
            raise _problem(f"is not a URL Dagster's storage can read: write it as {_POSTGRES_URL_FORM}") from None
        if "@" in host:
            raise _problem(
                "its password holds a raw @, which Dagster's storage reads as the end of it: write it as %40"
            )
        return value

    # -- fields together ----------------------------------------------------------------------
    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.rate_limit_backend == "postgres" and not self.rate_limit_url_env:
            raise _problem(
                "NH_RATE_LIMIT_BACKEND=postgres needs a database: set NH_POSTGRES_URL "
                f"(or NH_RATE_LIMIT_POSTGRES_URL) to {_POSTGRES_URL_FORM}"
            )
        if self.executor == "celery" and self.celery_broker is None:
            raise _problem(
                "NH_EXECUTOR=celery needs the workers' broker: set NH_CELERY_BROKER (e.g. redis://HOST:6379/0) "
                "and NH_CELERY_BACKEND to the same URL"
            )
        if self.demo and not self.gemini_api_url:
            raise _problem(
                "NH_DEMO=1 needs the demo API: start it with `.venv/bin/python -m nh_assets.demo --port 8765 &` "
                "and set NH_GEMINI_API_URL=http://127.0.0.1:8765 (`bash scripts/dev.sh --demo` does both)"
            )
        return self

    # -- what the definitions ask ---------------------------------------------------------------
    @property
    def rate_limit_url_env(self) -> str:
        """Name of the variable holding the Postgres bucket's URL, or "" for SQLite: resources get
        ``dg.EnvVar(name)``, so the URL itself stays in the environment, never in config or logs."""
        if self.rate_limit_backend != "postgres":
            return ""
        if self.rate_limit_postgres_url is not None:
            return "NH_RATE_LIMIT_POSTGRES_URL"
        return "NH_POSTGRES_URL" if self.postgres_url is not None else ""

    @property
    def cloudflare_token_set(self) -> bool:
        return self.cloudflare_api_token is not None

    @property
    def alert_webhook_set(self) -> bool:
        return self.alert_webhook is not None


def is_secret(field: FieldInfo) -> bool:
    """A field holding a secret: shown masked by ``nh config``, never in a repr or an error."""
    return SecretStr in (field.annotation, *typing.get_args(field.annotation))


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``; an
    empty value counts as unset (``env_ignore_empty``), as a blank line in ``.env`` means."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {name: value for name, value in environ.items() if value != ""}


_DERIVED_FROM_A_BAD_FIELD = "default_factory_not_called"


def _message(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        if err["type"] == _DERIVED_FROM_A_BAD_FIELD:
            continue  # the bad field above it is reported; its derived default says nothing more
        where = ".".join(str(part) for part in err["loc"])
        fix = _FIXES.get(err["type"])
        text = f"{err['msg']}; {fix}" if fix else err["msg"]
        problems.append(f"{where}: {text}" if where else text)
    return "bad NeuroHelix settings: " + "; ".join(problems)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment) or raise SettingsError."""
    source = _Environment(Settings, os.environ if env is None else env)
    try:
        return Settings(**source())
    except ValidationError as exc:
        raise SettingsError(_message(exc)) from None


def registry_path_from_env(env: Mapping[str, str] | None = None) -> Path:
    """$NH_REGISTRY if set, else the registry shipped with the repo. Separate from
    ``load_settings`` so that validating a registry never depends on the rest of the settings."""
    env = os.environ if env is None else env
    override = env.get("NH_REGISTRY", "").strip()
    return Path(override).expanduser() if override else DEFAULT_REGISTRY_PATH

