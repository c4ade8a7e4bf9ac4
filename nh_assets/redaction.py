"""The one place that decides what a secret looks like, and removes it from text that leaves a process.

Every boundary where text leaves the pipeline's control goes through ``redact``: Failure
descriptions, metadata, step logs, the failure files and webhook bodies, the output of the
Gemini CLI's stderr, of wrangler and of the site build. It is never applied to a model's
answer: that is data, and rewriting it would silently change an artifact.

Two nets, because neither alone is enough:

- **by value**: every value of a secret-named variable in the environment (``KEY``, ``TOKEN``,
  ``SECRET``, ``PASSWORD``, ``CREDENTIAL``, ``WEBHOOK`` in the name) and of the infrastructure
  URLs (``NH_POSTGRES_URL`` …), plus the password inside those URLs in raw, percent-encoded and
  decoded form. This catches a secret wherever it is echoed, whatever surrounds it.
- **by shape**: a password inside any URL or DSN in the text, whether or not it came from the
  environment: ``scheme://user:PASSWORD@host`` (the password may hold raw ``/ # ? @``: the
  userinfo ends at the *last* ``@`` of the token, so the standard URL parser's split is not
  used), ``?password=…`` / ``&sslpassword=…`` query parameters, libpq keyword DSNs
  (``host=db password='p w'``) and ``token=`` / ``api_key=`` parameters. This catches a URL
  typed into a registry, a config file or a message the environment never saw.

Over-redaction is preferred to a leak: a user name that happens to equal a password is masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

MASK = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|WEBHOOK", re.IGNORECASE)
# Infrastructure URLs whose names do not say "secret" but which carry a password.
SECRET_URL_VARIABLES = ("NH_POSTGRES_URL", "NH_RATE_LIMIT_POSTGRES_URL", "NH_CELERY_BROKER", "NH_CELERY_BACKEND")
# Values too short or too common to replace everywhere: masking every "true" would garble text and
# reveal nothing. URL passwords are still removed by shape whatever their length.
_MIN_VALUE_LEN = 4
_NOT_SECRET_VALUES = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})

# scheme://user:password@host — the password runs to the last "@" before whitespace or a quote.
_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@'\"<>]*:)(?P<secret>[^\s'\"<>]*)@(?=[^\s@'\"<>]*(?:[\s'\"<>]|$))"
)
# key=value pairs (URL query, keyword DSN, config and JSON lines) whose key ends in a secret word;
# a bare "key" only as a URL query parameter (Google's ?key=API_KEY).
_KEYWORD = re.compile(
    r"(?P<head>(?:(?<![A-Za-z0-9_])[A-Za-z0-9_]*?(?:password|passwd|pwd|token|secret|api_?key)|(?<=[?&])key)"
    r"[\"']?\s*[=:]\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"#)]+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) or name in SECRET_URL_VARIABLES


def url_password(url: str) -> str | None:
    """The password of ``scheme://user:password@host…`` as written (raw), or None."""
    found = _USERINFO.search(url)
    return found.group("secret") if found else None


def secret_values(env: Mapping[str, str]) -> set[str]:
    """Every string that must never appear in redacted text, from ``env``."""
    values: set[str] = set()
    for name, value in env.items():
        if not value or not is_secret_name(name):
            continue
        values.add(value)
        values.add(value.strip())
        candidates = [m.group("secret") for m in _USERINFO.finditer(value)]
        candidates += [m.group("secret").strip("'\"") for m in _KEYWORD.finditer(value)]
        for secret in candidates:
            values.update({secret, unquote(secret)})
    return {v for v in values if len(v) >= _MIN_VALUE_LEN and v.lower() not in _NOT_SECRET_VALUES}


class Redactor:
    """Removes a fixed set of secret values, then every URL or DSN password, from text."""

    def __init__(self, values: Iterable[str] = ()):
        # Longest first, so a URL is masked whole before its password alone would be.
        self._values = sorted({v for v in values if v}, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, extra: Iterable[str] = ()) -> "Redactor":
        return cls([*secret_values(os.environ if env is None else env), *extra])

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for value in self._values:
            text = text.replace(value, MASK)
        text = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
        return _KEYWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` without any secret of ``env`` (default: this process's environment) or any URL password."""
    return Redactor.from_env(env)(text)


def redact_url(url: str) -> str:
    """A URL or DSN fit for a log line or a label: every password replaced by ``***``."""
    return Redactor()(url)
