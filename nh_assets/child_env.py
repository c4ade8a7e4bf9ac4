"""What each child process may see of the pipeline's environment: an allow-list per program.

The pipeline's process holds every credential it uses: the Gemini key, the Cloudflare token,
the alert webhook, the Postgres and Celery URLs. A child that inherits all of them can leak
all of them (a crash dump, a debug log, a telemetry upload, a compromised npm dependency), so
each child gets only what its program is documented to read, named here, and nothing by default:

- the Gemini CLI: its own ``GEMINI_*`` and Google's ``GOOGLE_*`` (API key, base URL, Vertex
  project and location, application credentials), Node's ``NODE_*`` (extra CA certificates);
- wrangler: Cloudflare's ``CLOUDFLARE_*`` and its own ``WRANGLER_*``, Node's ``NODE_*``;
- the site build: no credential at all;

and all of them the basics every program needs: ``PATH``, ``HOME``, the user, locale (``LANG``,
``LC_*``), ``TZ``, ``TMPDIR``, the terminal's ``TERM``/``NO_COLOR``, the proxies in both cases
and the CA bundles a proxy may need. ``NH_CHILD_ENV_PASSTHROUGH`` (comma-separated names or
``PREFIX*`` patterns) adds what a site needs beyond the list, e.g. a corporate variable; it
is an operator's explicit decision, so it may name anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

PASSTHROUGH_ENV = "NH_CHILD_ENV_PASSTHROUGH"

_BASICS = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "NO_COLOR",
    "FORCE_COLOR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "no_proxy",
    "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
)


@dataclass(frozen=True)
class Allowed:
    """Names and name prefixes one program may see."""

    names: frozenset[str]
    prefixes: tuple[str, ...]

    def admits(self, name: str) -> bool:
        return name in self.names or name.startswith(self.prefixes)


GEMINI_CLI = Allowed(frozenset(_BASICS), ("LC_", "GEMINI_", "GOOGLE_", "NODE_"))
WRANGLER = Allowed(frozenset(_BASICS), ("LC_", "CLOUDFLARE_", "WRANGLER_", "NODE_"))
SITE_BUILD = Allowed(frozenset(_BASICS), ("LC_",))


def _passthrough(env: Mapping[str, str]) -> Allowed:
    entries = [e.strip() for e in env.get(PASSTHROUGH_ENV, "").split(",") if e.strip()]
    return Allowed(
        frozenset(e for e in entries if not e.endswith("*")), tuple(e[:-1] for e in entries if e.endswith("*"))
    )


def child_env(allowed: Allowed, env: Mapping[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """The variables of ``env`` (default: this process's) that ``allowed`` or the operator's
    passthrough admit, then ``overrides``."""
    env = os.environ if env is None else env
    extra = _passthrough(env)
    kept = {name: value for name, value in env.items() if allowed.admits(name) or extra.admits(name)}
    kept.update(overrides)
    return kept
