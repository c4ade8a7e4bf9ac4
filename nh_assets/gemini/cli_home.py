"""A CLI home of our own for calls to an explicit API endpoint (``NH_GEMINI_API_URL``).

When the pipeline points the CLI at another Gemini-compatible endpoint (the demo's local fake,
a proxy), the operator's ``~/.gemini`` must not decide how the CLI authenticates or what it
sends elsewhere: the CLI then runs with this home, which selects API-key auth and turns off
everything that would reach Google on the side. Every key was checked in the 0.61.0 bundle;
without ``usageStatisticsEnabled=false`` the CLI posts usage logs to Google.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADLESS_SETTINGS: dict[str, Any] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "telemetry": {"enabled": False},
    "tools": {"useRipgrep": False},
    "ui": {"showCompatibilityWarnings": False},
    "advanced": {"ignoreLocalEnv": True},
}


def write_cli_home(home: Path, settings: dict[str, Any] | None = None) -> Path:
    """Create ``home/.gemini/settings.json``; returns ``home``."""
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings or HEADLESS_SETTINGS, indent=2)
    (home / ".gemini" / "settings.json").write_text(text, encoding="utf-8")
    return home
