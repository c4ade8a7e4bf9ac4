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


def session_auth(env: dict[str, str]) -> dict | None:
    """The settings to merge into each session, or None when a headless call would fail for want
    of credentials: the warm CLI service then declines and the one-shot call reports ``auth`` with its fix."""
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME") or ""
    try:
        user = json.loads((Path(home) / ".gemini" / "settings.json").read_text(encoding="utf-8"))
        if ((user.get("security") or {}).get("auth") or {}).get("selectedType"):
            return {}
    except (OSError, ValueError, AttributeError):
        pass
    for name, auth in (
        ("GOOGLE_GENAI_USE_GCA", "oauth-personal"), ("GOOGLE_GENAI_USE_VERTEXAI", "vertex-ai"),
        ("GEMINI_API_KEY", "gemini-api-key"), ("GEMINI_CLI_USE_COMPUTE_ADC", "compute-default-credentials"),
    ):
        if env.get(name) and (name == "GEMINI_API_KEY" or env[name] == "true"):
            return {"security": {"auth": {"selectedType": auth}}}
    return None
