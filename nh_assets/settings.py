"""Operator settings read once, when the code location loads.

Everything an operator may change without touching code comes from environment variables, is
validated here, and reaches assets only through resources or definitions. Assets never read
``os.environ`` themselves, so a materialization's behaviour is visible in its resource config.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REGISTRY_PATH = REPO_ROOT / "registry" / "prompts.tsv"
DEFAULT_SYSTEM_PROMPT_PATH = REPO_ROOT / "registry" / "system_prompt.md"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(Exception):
    """A bad environment variable: the message names it and says how to fix it."""


# Fields that take one of a few words, with the words in the order the error message lists them.
_CHOICES = {
    "executor_start_method": ("forkserver", "spawn"),
    "executor": ("multiprocess", "celery"),
    "rate_limit_backend": ("sqlite", "postgres"),
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_root: Path = Field(description="NH_DATA_ROOT: root of the NeuroHelix data layout.")
    gemini_cli: str = Field(description="NH_GEMINI_CLI: path or name of the gemini executable.")
    demo: bool = Field(description="NH_DEMO: the endpoint is the project's fake API; label every output as fake.")
    gemini_api_url: str = Field(
        description="NH_GEMINI_API_URL: a Gemini API endpoint instead of Google's (the demo's fake API, a proxy)."
    )
    partition_start: date = Field(description="NH_PARTITION_START: first daily partition.")
    timezone: str = Field(description="NH_TIMEZONE: IANA zone whose midnight starts a day.")
    rate_per_minute: int = Field(ge=1, description="NH_RATE_PER_MINUTE: Gemini requests per minute.")
    rate_per_day: int = Field(ge=1, description="NH_RATE_PER_DAY: Gemini requests per day.")
    rate_limit_db: Path = Field(description="NH_RATE_LIMIT_DB: SQLite file shared by every process.")
    rate_limit_backend: str = Field(
        description="NH_RATE_LIMIT_BACKEND: sqlite (one machine) or postgres (every machine; the default "
        "when NH_POSTGRES_URL is set)."
    )
    rate_limit_url_env: str = Field(
        description="Name of the variable holding the Postgres bucket's URL (NH_RATE_LIMIT_POSTGRES_URL if set, "
        "else NH_POSTGRES_URL); the URL itself stays in the environment, never in config or logs."
    )
    workdir_root: Path = Field(description="NH_WORKDIR_ROOT: parent of the CLI's empty working dirs.")
    system_prompt: Path = Field(description="NH_SYSTEM_PROMPT: the system prompt every model call gets.")
    max_gemini_processes: int = Field(ge=1, description="NH_MAX_GEMINI_PROCESSES: CLI processes at once, machine-wide.")
    gemini_transport: Literal["acp", "oneshot"] = Field(
        description="NH_GEMINI_TRANSPORT: acp (warm CLIs in ACP mode, one-shot when the pool cannot) or oneshot."
    )
    executor: str = Field(
        description="NH_EXECUTOR: multiprocess (steps in processes on this machine) or celery (steps on "
        "Celery workers on any machine; broker in NH_CELERY_BROKER)."
    )
    executor_start_method: str = Field(description="NH_EXECUTOR_START_METHOD: forkserver or spawn.")
    executor_max_concurrent: int = Field(ge=1, description="NH_EXECUTOR_MAX_CONCURRENT: step processes per run.")
    schedule_enabled: bool = Field(description="NH_SCHEDULE_ENABLED: start the daily schedule running.")
    schedule_hour: int = Field(ge=0, le=23, description="NH_SCHEDULE_HOUR: hour of the daily run (NH_TIMEZONE).")
    schedule_minute: int = Field(ge=0, le=59, description="NH_SCHEDULE_MINUTE: minute of the daily run.")
    report_deadline_hour: int = Field(ge=0, le=23, description="NH_REPORT_DEADLINE_HOUR: today's report is late after this.")
    retention_days: int = Field(ge=1, description="NH_RETENTION_DAYS: keep this many days of artifacts.")
    site_dir: Path = Field(description="NH_SITE_DIR: the built site, a link to its latest build (DATA_ROOT/site).")
    site_url: str = Field(description="NH_SITE_URL: public base URL of the site, for the feed and notifications.")
    pagefind_cli: str = Field(description="NH_PAGEFIND_CLI: path or name of the pagefind executable (search index).")
    site_build_command: str = Field(description="NH_SITE_BUILD_COMMAND: optional command run before deploying.")
    cloudflare_project: str = Field(description="NH_CLOUDFLARE_PROJECT: Cloudflare Pages project name.")
    wrangler_cli: str = Field(description="NH_WRANGLER_CLI: path or name of the wrangler executable.")
    # Secrets: only their presence is read at load; Dagster resolves the values at execution (dg.EnvVar).
    cloudflare_token_set: bool = Field(description="CLOUDFLARE_API_TOKEN is set: deploy the site.")
    alert_webhook_set: bool = Field(description="NH_ALERT_WEBHOOK is set: post failure alerts.")
    ui_url: str = Field(description="NH_DAGSTER_UI_URL: base URL of the Dagster UI, for links in alerts.")

    @field_validator("executor_start_method", "executor", "rate_limit_backend")
    @classmethod
    def _one_of_choices(cls, value: str, info: ValidationInfo) -> str:
        choices = _CHOICES[info.field_name]
        if value not in choices:
            raise ValueError(f"must be {' or '.join(choices)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from exc
        return value


_ENV_NAMES = {
    "gemini_cli": "NH_GEMINI_CLI",
    "wrangler_cli": "NH_WRANGLER_CLI",
    "pagefind_cli": "NH_PAGEFIND_CLI",
    "rate_limit_url_env": "NH_POSTGRES_URL",
}


POSTGRES_URL_SCHEME = "postgresql+psycopg2://"


def _check_postgres_url(env: dict[str, str]) -> None:
    """Dagster's Postgres storage reads NH_POSTGRES_URL through SQLAlchemy. SQLAlchemy 2.1 maps a
    bare ``postgresql://`` to psycopg 3, on which dagster-postgres 0.29's NOTIFY fails, so the
    driver must be named; caught here, where the message can say so, not deep in a run."""
    url = env.get("NH_POSTGRES_URL", "")
    if url and not url.startswith(POSTGRES_URL_SCHEME):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise SettingsError(
            f"NH_POSTGRES_URL must start with {POSTGRES_URL_SCHEME} (got scheme {scheme!r}): "
            f"write it as {POSTGRES_URL_SCHEME}USER:PASSWORD@HOST:5432/DB"
        )


def _rate_limit_store(env: dict[str, str]) -> tuple[str, str]:
    """(backend, name of the URL variable). Postgres storage implies a Postgres bucket by
    default: an operator who moved to several machines must not keep a per-machine limit by
    accident."""
    _check_postgres_url(env)
    url_env = "NH_RATE_LIMIT_POSTGRES_URL" if env.get("NH_RATE_LIMIT_POSTGRES_URL") else "NH_POSTGRES_URL"
    backend = (env.get("NH_RATE_LIMIT_BACKEND") or ("postgres" if env.get(url_env) else "sqlite")).strip().lower()
    if backend == "postgres" and not env.get(url_env):
        raise SettingsError(
            "NH_RATE_LIMIT_BACKEND=postgres needs a database: set NH_POSTGRES_URL "
            f"(or NH_RATE_LIMIT_POSTGRES_URL) to {POSTGRES_URL_SCHEME}USER:PASSWORD@HOST:5432/DB"
        )
    return backend, (url_env if backend == "postgres" else "")


def _flag(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; set it to 1 or 0")


def _default_timezone(env: dict[str, str]) -> str:
    # NeuroHelix ran on the operator's local clock: honour TZ when it is an IANA name.
    tz = env.get("TZ", "").lstrip(":")
    try:
        if tz:
            ZoneInfo(tz)
            return tz
    except (ZoneInfoNotFoundError, ValueError):
        pass
    return "UTC"


def _system_prompt(env: dict[str, str]) -> Path:
    """The CLI would otherwise send its own 23 KB coding-agent prompt: a missing file is an error
    at load, not a silent fallback."""
    path = Path(env.get("NH_SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT_PATH).expanduser().resolve()
    if not path.is_file() or not path.read_text(encoding="utf-8").strip():
        raise SettingsError(
            f"NH_SYSTEM_PROMPT: {path} is missing or empty — point it at a system prompt file "
            f"(the repo ships {DEFAULT_SYSTEM_PROMPT_PATH.relative_to(REPO_ROOT)})"
        )
    return path


def registry_path_from_env(env: dict[str, str] | None = None) -> Path:
    """$NH_REGISTRY if set, else the registry shipped with the repo. Separate from
    ``load_settings`` so that validating a registry never depends on the rest of the settings."""
    env = dict(os.environ if env is None else env)
    override = env.get("NH_REGISTRY", "").strip()
    return Path(override).expanduser() if override else DEFAULT_REGISTRY_PATH


def dagster_home(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ if env is None else env)
    return Path(env.get("DAGSTER_HOME") or REPO_ROOT / "dagster_home").resolve()


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment) or raise SettingsError."""
    env = dict(os.environ if env is None else env)
    home = dagster_home(env)
    backend, url_env = _rate_limit_store(env)
    executor = (env.get("NH_EXECUTOR") or "multiprocess").strip().lower()
    if executor == "celery" and not env.get("NH_CELERY_BROKER"):
        raise SettingsError(
            "NH_EXECUTOR=celery needs the workers' broker: set NH_CELERY_BROKER (e.g. redis://HOST:6379/0) "
            "and NH_CELERY_BACKEND to the same URL"
        )
    data_root = Path(env.get("NH_DATA_ROOT") or Path.cwd() / "data").expanduser().resolve()
    demo = _flag(env, "NH_DEMO")
    api_url = env.get("NH_GEMINI_API_URL", "").strip()
    if demo and not api_url:
        raise SettingsError(
            "NH_DEMO=1 needs the demo API: start it with `.venv/bin/python -m nh_assets.demo --port 8765 &` "
            "and set NH_GEMINI_API_URL=http://127.0.0.1:8765 (`bash scripts/dev.sh --demo` does both)"
        )
    raw = {
        "data_root": data_root,
        "gemini_cli": env.get("NH_GEMINI_CLI") or "gemini",
        "demo": demo,
        "gemini_api_url": api_url,
        "partition_start": env.get("NH_PARTITION_START") or "2025-11-01",
        "timezone": env.get("NH_TIMEZONE") or _default_timezone(env),
        "rate_per_minute": env.get("NH_RATE_PER_MINUTE") or 50,
        "rate_per_day": env.get("NH_RATE_PER_DAY") or 1000,
        "rate_limit_db": Path(env.get("NH_RATE_LIMIT_DB") or home / "nh_gemini_rate_limit.sqlite"),
        "rate_limit_backend": backend,
        "rate_limit_url_env": url_env,
        "workdir_root": Path(env.get("NH_WORKDIR_ROOT") or home / "gemini_workdirs"),
        "system_prompt": _system_prompt(env),
        "max_gemini_processes": env.get("NH_MAX_GEMINI_PROCESSES") or 4,
        "gemini_transport": (env.get("NH_GEMINI_TRANSPORT") or "acp").strip().lower(),
        "executor": executor,
        "executor_start_method": env.get("NH_EXECUTOR_START_METHOD") or "forkserver",
        "executor_max_concurrent": env.get("NH_EXECUTOR_MAX_CONCURRENT") or 8,
        "schedule_enabled": _flag(env, "NH_SCHEDULE_ENABLED"),
        "schedule_hour": env.get("NH_SCHEDULE_HOUR") or 6,
        "schedule_minute": env.get("NH_SCHEDULE_MINUTE") or 0,
        "report_deadline_hour": env.get("NH_REPORT_DEADLINE_HOUR") or 9,
        "retention_days": env.get("NH_RETENTION_DAYS") or 90,
        # Not resolved: the site directory is a link that each build replaces.
        "site_dir": Path(os.path.abspath(Path(env.get("NH_SITE_DIR") or data_root / "site").expanduser())),
        "site_url": env.get("NH_SITE_URL") or f"https://{env.get('NH_CLOUDFLARE_PROJECT') or 'neurohelix'}.pages.dev",
        "pagefind_cli": env.get("NH_PAGEFIND_CLI") or str(REPO_ROOT / "node_modules" / ".bin" / "pagefind"),
        "site_build_command": env.get("NH_SITE_BUILD_COMMAND") or "",
        "cloudflare_project": env.get("NH_CLOUDFLARE_PROJECT") or "neurohelix",
        "wrangler_cli": env.get("NH_WRANGLER_CLI") or "wrangler",
        "cloudflare_token_set": bool(env.get("CLOUDFLARE_API_TOKEN", "").strip()),
        "alert_webhook_set": bool(env.get("NH_ALERT_WEBHOOK", "").strip()),
        "ui_url": env.get("NH_DAGSTER_UI_URL", "").strip() or "http://127.0.0.1:3000",
    }
    try:
        return Settings(**raw)
    except ValidationError as exc:
        names = {name: _ENV_NAMES.get(name, "NH_" + name.upper()) for name in Settings.model_fields}
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            problems.append(f"{names.get(field, field)}: {err['msg']}")
        raise SettingsError("bad NeuroHelix settings: " + "; ".join(problems)) from None
