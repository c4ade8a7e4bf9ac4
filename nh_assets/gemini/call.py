"""What one prompt asks of the CLI besides its text, and how the CLI is told.

The CLI takes no flag for temperature, thinking budget or the set of tools, but it reads them
from a ``.gemini/settings.json`` in its working directory when that folder is trusted
(``GEMINI_CLI_TRUST_WORKSPACE=true``; measured with 0.61.0: ``--skip-trust`` alone skips the
trust prompt but ignores the folder's settings). Each call runs in a fresh directory of ours,
so its settings say exactly what the registry row says, and the operator's ``~/.gemini``
settings (a Google login, say) stay untouched:

- ``tools.core`` lists the row's tools; ``[]`` declares none (0.61.0 otherwise declares eight
  coding-agent tools, 7.2 KB, on every request);
- ``modelConfigs.customOverrides`` sets the row's temperature and thinking budget for every
  request on the row's model (without it the CLI sends temperature 1.0 whatever the row says).
  An override rather than a model alias: measured with 0.61.0, an alias's settings reached the
  first request of a tool loop but not the follow-up that carries the tool's result, which the
  CLI sends under the resolved model name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

@dataclass(frozen=True)
class ModelCall:
    model: str
    timeout_s: float
    tools: tuple[str, ...] = ()
    temperature: float | None = None
    thinking_budget: int | None = None
    approval_mode: str = "default"
    fallback_model: str | None = None  # asked instead when the model's daily quota is spent

    def settings(self) -> dict:
        config: dict[str, object] = {}
        if self.temperature is not None:
            config["temperature"] = self.temperature
        if self.thinking_budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": self.thinking_budget}
        override = {"match": {"model": self.model}, "modelConfig": {"generateContentConfig": config}}
        return {"tools": {"core": list(self.tools)}, "modelConfigs": {"customOverrides": [override]}}

    def write_settings(self, workdir: Path) -> None:
        (workdir / ".gemini").mkdir(parents=True, exist_ok=True)
        (workdir / ".gemini" / "settings.json").write_text(json.dumps(self.settings(), indent=2), encoding="utf-8")
