"""How a warm CLI's sessions authenticate: as the headless CLI would with the same settings.

In ACP mode 0.61.0 falls back to the ``gateway`` auth type whenever ``GOOGLE_GEMINI_BASE_URL`` is
set — always, behind our rate gate — and then sends requests without any key, where a headless
call stops with exit 41 (measured against the fake API: no key, requests sent). So the service
writes into each session's settings the type the headless CLI would take: the user settings'
``security.auth.selectedType`` (left alone), else the credentials in the environment, read in the
order of the CLI's ``getAuthTypeFromEnv`` less the gate's URL.
"""

from __future__ import annotations

import json
from pathlib import Path

# The one auth type whose sessions may share a CLI: its requests go to the base URL that ACP's
# ``authenticate`` names (``_meta.gateway``), so each session can have a rate gate of its own.
SHARED_AUTH = "gemini-api-key"


def _user_auth_type(env: dict[str, str]) -> str:
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME") or ""
    try:
        user = json.loads((Path(home) / ".gemini" / "settings.json").read_text(encoding="utf-8"))
        return str(((user.get("security") or {}).get("auth") or {}).get("selectedType") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def session_auth(env: dict[str, str]) -> dict | None:
    """The settings to merge into each session, or None when a headless call would fail for want
    of credentials: the warm CLI service then declines and the one-shot call reports ``auth`` with its fix."""
    if _user_auth_type(env):
        return {}
    for name, auth in (
        ("GOOGLE_GENAI_USE_GCA", "oauth-personal"), ("GOOGLE_GENAI_USE_VERTEXAI", "vertex-ai"),
        ("GEMINI_API_KEY", "gemini-api-key"), ("GEMINI_CLI_USE_COMPUTE_ADC", "compute-default-credentials"),
    ):
        if env.get(name) and (name == "GEMINI_API_KEY" or env[name] == "true"):
            return {"security": {"auth": {"selectedType": auth}}}
    return None


def shared_auth_method(env: dict[str, str]) -> str | None:
    """The ``authenticate`` method when one CLI may serve several sessions at once, else None.

    ``authenticate`` is what gives each session its own base URL, and in 0.61.0 it has two side
    effects on the user settings of the CLI's home: it stores its method as
    ``security.auth.selectedType``, and it deletes the cached Google credentials when that type
    changes. So it is used only where both are no-ops: API-key auth already stored there (the
    private home of a configured endpoint, ``cli_home``, or an operator's own choice). A Google
    login, or a key found only in the environment, keeps one prompt per CLI: the Code Assist body
    names its session (``request.session_id``), which could attribute requests, but that is untested.
    """
    return SHARED_AUTH if _user_auth_type(env) == SHARED_AUTH and env.get("GEMINI_API_KEY") else None
