"""Where ``nh``'s configuration comes from: the process environment and a ``.env`` file.

``dagster dev`` (and every ``dagster`` command that opens an instance) reads ``.env`` from its
current directory with python-dotenv and sets each variable it defines, **over** a value already
in the environment (``dagster._cli.utils._inject_local_env_file``, 1.13); the webserver, the
daemon and the code servers inherit that environment. ``nh`` must see what the pipeline sees, so it
loads the same file the same way, before anything reads a setting, and remembers where each value
came from for ``nh config``.

It also supplies the two things only ``nh`` needs: the webserver's URL and, when ``DAGSTER_HOME``
is unset, the same default ``scripts/dev.sh`` uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from nh_assets.settings import REPO_ROOT

DOTENV_NAME = ".env"
WEBSERVER_URL_ENV = "NH_WEBSERVER_URL"
# The failure alerts' link base (nh_assets.alerts): the same server, so honoured as a fallback.
UI_URL_ENV = "NH_DAGSTER_UI_URL"
PORT_ENV = "NH_PORT"  # scripts/dev.sh's port
DEFAULT_PORT = "3000"
START_HINT = "start one with `bash scripts/dev.sh` (or point NH_WEBSERVER_URL at a running one)"


@dataclass(frozen=True)
class Environment:
    """The environment ``nh`` runs with, and which variables the ``.env`` file supplied."""

    values: Mapping[str, str]
    dotenv_path: Path | None
    from_dotenv: frozenset[str]
    overridden: frozenset[str]  # set in the environment too; the file's value won, as in dagster dev

    def source(self, name: str) -> str:
        if name in self.overridden:
            return ".env (over environment)"
        if name in self.from_dotenv:
            return ".env"
        return "environment" if self.values.get(name, "") != "" else "default"


def load_environment(cwd: Path, process_env: Mapping[str, str]) -> Environment:
    """Merge ``cwd/.env`` over ``process_env`` exactly as Dagster's CLI does (None values dropped)."""
    path = cwd / DOTENV_NAME
    from_file: dict[str, str] = {}
    if path.is_file():
        from_file = {key: value for key, value in dotenv_values(path).items() if value is not None}
    overridden = {key for key in from_file if key in process_env}
    return Environment(
        values={**process_env, **from_file},
        dotenv_path=path if path.is_file() else None,
        from_dotenv=frozenset(from_file),
        overridden=frozenset(overridden),
    )


def default_dagster_home(env: Mapping[str, str]) -> Path:
    """scripts/dev.sh's choice: the Postgres instance config when NH_POSTGRES_URL is set."""
    home = REPO_ROOT / "dagster_home"
    return home / "postgres" if env.get("NH_POSTGRES_URL") else home


def apply(environment: Environment, target: MutableMapping[str, str] = os.environ) -> None:
    """Make the merged environment the process's own, so Dagster and the settings read it."""
    for name in environment.from_dotenv:
        target[name] = environment.values[name]
    if not target.get("DAGSTER_HOME"):
        target["DAGSTER_HOME"] = str(default_dagster_home(target))


def webserver_url(env: Mapping[str, str]) -> str:
    url = env.get(WEBSERVER_URL_ENV) or env.get(UI_URL_ENV) or f"http://127.0.0.1:{env.get(PORT_ENV) or DEFAULT_PORT}"
    return url.strip().rstrip("/")
