"""``nh config``: every setting, the value in force and where it came from, secrets masked.

Values come from the environment, from ``.env`` (which, as in ``dagster dev``, wins over the
environment for the variables it defines: ``environment.py``) or from the defaults in
``nh_assets.settings``; a default is shown as the settings module resolves it, so paths appear
as the pipeline will use them. Secrets are never printed: tokens and webhooks as ``***``, URLs
with their password replaced. Variables named ``NH_*`` that nothing reads are listed too, since a
misspelt name otherwise fails silently by falling back to the default.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from pydantic.fields import FieldInfo

from nh_assets.cli.environment import DOTENV_NAME, Environment, default_dagster_home, webserver_url
from nh_assets.cli.exit_codes import INVALID, OK
from nh_assets.cli.output import print_json, table
from nh_assets.settings import registry_path_from_env
from nh_assets.settings import Settings, SettingsError, is_secret, load_settings

PLAIN, URL, TOKEN = "plain", "url", "token"
MASK = "***"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|WEBHOOK", re.IGNORECASE)


@dataclass(frozen=True)
class Variable:
    name: str
    field: str | None  # the Settings field that holds its resolved value, if any
    secret: str  # plain | url (mask the password) | token (mask all)
    meaning: str
    default: str = ""  # shown when unset and no Settings field resolves it


# Variables that nh, the scripts or the CLI's children read, outside the code location's settings.
_OTHERS: tuple[Variable, ...] = (
    Variable("NH_WEBSERVER_URL", None, PLAIN, "the webserver nh submits to (else NH_DAGSTER_UI_URL, else NH_PORT)"),
    Variable("NH_PORT", None, PLAIN, "scripts/dev.sh's webserver port", "3000"),
    Variable("NH_REGISTRY", None, PLAIN, "the prompt registry"),
    Variable("NH_CELERY_BACKEND", None, URL, "Celery result backend"),
    Variable("GEMINI_API_KEY", None, TOKEN, "Gemini API key, passed to the CLI"),
    Variable("GOOGLE_GEMINI_BASE_URL", None, URL, "Gemini API endpoint the rate gate forwards to"),
    Variable("CODE_ASSIST_ENDPOINT", None, URL, "Code Assist endpoint (Google login) the rate gate forwards to"),
    Variable("NH_CHILD_ENV_PASSTHROUGH", None, PLAIN,
             "extra variables every child process may see: comma-separated names or PREFIX*"),
    Variable("NH_DEMO_PORT", None, PLAIN, "scripts/dev.sh --demo's fake Gemini API port", "8765"),
    Variable("NH_DEBUG", None, PLAIN, "1: nh prints the traceback of an unexpected error"),
    Variable("NH_CHROMIUM", None, PLAIN, "the Chromium the browser tests drive (scripts/test.sh)", "/usr/bin/chromium"),
    Variable("NH_TEST_WORKERS", None, PLAIN, "scripts/test.sh's pytest-xdist workers (0: one process)",
             "3 (--fast: 2)"),
)


def _setting(name: str, field: FieldInfo) -> Variable:
    """A row from the settings' own declaration: its variable, how to show it, and what it means."""
    variable = str(field.validation_alias)
    if is_secret(field):
        secret = URL if variable.endswith(("_URL", "_BROKER")) else TOKEN
    else:
        secret = URL if variable.endswith("_URL") else PLAIN
    meaning = (field.description or "").removeprefix(f"{variable}: ")
    return Variable(variable, name, secret, meaning)


VARIABLES: tuple[Variable, ...] = (
    *(_setting(name, field) for name, field in Settings.model_fields.items()),
    *_OTHERS,
)
_KNOWN = {v.name for v in VARIABLES}


def mask(value: str, secret: str) -> str:
    if not value or secret == PLAIN:
        return value
    if secret == TOKEN:
        return MASK
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return MASK  # not a URL we can show safely in parts
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username is not None or parts.password is not None:
        host = f"{parts.username or ''}:{MASK}@{host}" if parts.password is not None else f"{MASK}@{host}"
    # Query strings carry tokens as often as passwords do; the path is kept for database names.
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, MASK if parts.query else "", ""))


def _shown(value: object) -> str:
    if value is None or value == "":
        return "(unset)"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def collect(environment: Environment) -> tuple[list[dict], str | None]:
    """Rows of (name, value, source, meaning) and the settings error, if the settings are invalid."""
    env = environment.values
    settings: Settings | None = None
    error = None
    try:
        settings = load_settings(dict(env))
    except SettingsError as exc:
        error = str(exc)
    rows = []
    for var in VARIABLES:
        source = environment.source(var.name)
        raw = env.get(var.name, "")
        if source != "default":
            value = mask(raw, var.secret)
        elif var.name == "DAGSTER_HOME":
            value = str(default_dagster_home(env))
        elif var.name == "NH_WEBSERVER_URL":
            value = webserver_url(env)
        elif var.name == "NH_REGISTRY":
            value = str(registry_path_from_env())
        elif var.field and settings is not None:
            value = _shown(getattr(settings, var.field))
        else:
            value = var.default or "(unset)"
        rows.append({"name": var.name, "value": value, "source": source, "meaning": var.meaning})
    for name in sorted(n for n in env if n.startswith("NH_") and n not in _KNOWN):
        secret = TOKEN if _SECRET_NAME.search(name) else URL if "://" in env[name] else PLAIN
        rows.append(
            {
                "name": name,
                "value": mask(env[name], secret),
                "source": environment.source(name),
                "meaning": "not read by nh_assets — a misspelt name?",
            }
        )
    return rows, error


def config_command(environment: Environment, as_json: bool) -> int:
    rows, error = collect(environment)
    dotenv = str(environment.dotenv_path) if environment.dotenv_path else None
    if as_json:
        print_json({"dotenv": dotenv, "valid": error is None, "error": error, "settings": rows})
    else:
        print(table(["variable", "value", "source", "meaning"], [tuple(r.values()) for r in rows], max_width=72))
        print()
        print(f"{DOTENV_NAME}: {dotenv or f'none in this directory ({DOTENV_NAME}.example shows the format)'}")
        print("precedence: .env over the environment over defaults (as dagster dev loads them)")
        if error:
            print(f"invalid: {error}")
    return INVALID if error else OK
