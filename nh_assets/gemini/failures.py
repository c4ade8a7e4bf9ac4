"""What went wrong with a Gemini CLI call, and whether trying again can help.

The CLI reports failures through exit codes, a JSON error object on stdout and free text on
stderr. Each failure is reduced to one kind with a one-line cause and a fix, so that the asset
can decide between failing at once (auth, configuration, a spent daily quota, an answer the API
withheld or cut short), backing off (a rate limit, as long as the API asked) and retrying soon
(timeouts, malformed output, anything else).
"""

from __future__ import annotations

import enum
import json
import re

from nh_assets.redaction import redact


class FailureKind(str, enum.Enum):
    CLI_MISSING = "cli_missing"
    AUTH = "auth"
    CONFIG = "config"
    UNTRUSTED_FOLDER = "untrusted_folder"
    RATE_LIMIT = "rate_limit"
    DAILY_CAP = "daily_cap"
    RATE_LIMIT_STORE = "rate_limit_store"
    QUOTA_SPENT = "quota_spent"
    BLOCKED = "blocked"
    CUT_SHORT = "cut_short"
    TIMEOUT = "timeout"
    BAD_OUTPUT = "bad_output"
    OTHER = "other"

    @property
    def retryable(self) -> bool:
        return self in {FailureKind.RATE_LIMIT, FailureKind.TIMEOUT, FailureKind.BAD_OUTPUT, FailureKind.OTHER}


_FIXES = {
    FailureKind.CLI_MISSING: "install it with `npm install -g @google/gemini-cli@0.61.0` (or `bash scripts/setup.sh`) "
    "and set NH_GEMINI_CLI to its path; `bash scripts/dev.sh --demo` (NH_DEMO=1) sets all of it up",
    FailureKind.AUTH: "export GEMINI_API_KEY; with a Google login, log in again: run `gemini` once interactively "
    "as the pipeline's user (the same HOME); or run the demo: `bash scripts/dev.sh --demo` (NH_DEMO=1 with the "
    "project's fake Gemini API)",
    FailureKind.CONFIG: "check the registry row's model and tools and the CLI's settings.json",
    FailureKind.UNTRUSTED_FOLDER: "the CLI refused its working folder; keep skip_trust on or set "
    "GEMINI_CLI_TRUST_WORKSPACE=true",
    FailureKind.RATE_LIMIT: "the API is rate limiting; lower NH_RATE_PER_MINUTE or wait for the quota to reset",
    FailureKind.DAILY_CAP: "raise NH_RATE_PER_DAY or rerun tomorrow",
    FailureKind.RATE_LIMIT_STORE: "fix the rate-limit settings named above (NH_RATE_PER_*, NH_RATE_LIMIT_BACKEND, "
    "NH_POSTGRES_URL) or bring the bucket's database up",
    FailureKind.QUOTA_SPENT: "no request is sent to this model until the reset named above; give the row a "
    "fallback_model in registry/prompts.tsv, raise the model's quota (a paid tier) and its row in registry/quotas.tsv, "
    "or rerun the day after the reset",
    FailureKind.BLOCKED: "the API withheld the answer (the finish reason named above); the same prompt is blocked "
    "again, so reword the row's prompt or check the day's inputs",
    FailureKind.CUT_SHORT: "the answer hit the output limit; lower the row's thinking_budget or ask for a shorter "
    "answer in its prompt",
    FailureKind.TIMEOUT: "raise the row's timeout_sec in registry/prompts.tsv if the prompt is legitimately slow",
    FailureKind.BAD_OUTPUT: "the model's answer did not fit the expected format; a retry usually fixes it",
    FailureKind.OTHER: "read the step's stderr excerpt; retry, or run the CLI by hand with the same model",
}

_AUTH_PATTERNS = re.compile(
    r"api[ _-]?key|GEMINI_API_KEY|unauthenticated|permission[_ ]denied|\b401\b|\b403\b|"
    r"auth(entication)? (method|required|failed)|login required|credentials",
    re.IGNORECASE,
)
# What 0.61.0 says when its cached Google login (``oauth-personal``) cannot be refreshed and a new
# login needs a person: headless, exit 41 with the first; in ACP mode it asks for a code instead
# (``warm_cli.connection``). Its own line starts with the stack trace's "Error authenticating".
_LOGIN_NEEDED = re.compile(r"Manual authorization is required|Failed to authenticate with user code", re.IGNORECASE)
GOOGLE_LOGIN_NEEDED = (
    "the CLI could not refresh its cached Google login (~/.gemini/oauth_creds.json in its HOME: expired or "
    "revoked, or Google's token endpoint unreachable), and logging in again needs a person"
)
_RATE_PATTERNS = re.compile(r"\b429\b|RESOURCE_EXHAUSTED|quota|rate[ -]?limit", re.IGNORECASE)
_TRUST_PATTERNS = re.compile(r"trust(ed)? (folder|workspace|directory)|untrusted", re.IGNORECASE)
_CONFIG_PATTERNS = re.compile(r"\b404\b|NOT_FOUND|model .*not found|invalid argument|unknown argument", re.IGNORECASE)

# Exit codes of @google/gemini-cli 0.61.0 in headless mode (measured against the fake API).
EXIT_AUTH = 41
EXIT_CONFIG = 52
EXIT_UNTRUSTED = 55
EXIT_RATE_LIMITED = 429 & 0xFF  # the CLI calls process.exit(429) after its own retries: 173


class GeminiFailure(Exception):
    """A classified CLI failure. Not a dataclass: frozen exceptions break context managers."""

    def __init__(self, kind: FailureKind, cause: str, *, retry_after_s: float | None = None):
        # Every failure's text becomes a step's Failure description, a failure file and a webhook
        # body: redacted here, once, whatever produced it (the CLI's stdout, a store's error).
        cause = redact(cause)
        super().__init__(kind, cause)
        self.kind = kind
        self.cause = cause
        self.retry_after_s = retry_after_s  # the API's own RetryInfo, when it gave one

    def __str__(self) -> str:
        return f"Gemini {self.kind.value}: {self.cause} — fix: {_FIXES[self.kind]}"

    @property
    def fix(self) -> str:
        return _FIXES[self.kind]


def error_message(stream: str) -> str | None:
    """The ``error.message`` of the last JSON error object in a stream. The 0.61.0 CLI prints it
    pretty-printed on stderr, after any retry traces; older versions used stdout."""
    decoder = json.JSONDecoder()
    found = None
    for match in re.finditer(r"^\{", stream, re.MULTILINE):
        try:
            doc, _ = decoder.raw_decode(stream, match.start())
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            found = str(doc["error"].get("message") or doc["error"].get("type") or "")
    return found


def _first_line(text: str, limit: int = 240) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return ""


def classify_exit(returncode: int, stdout: str, stderr: str) -> GeminiFailure:
    """Turn a non-zero CLI exit into a classified failure (its cause is redacted by ``GeminiFailure``)."""
    json_message = error_message(stderr) or error_message(stdout)
    text = "\n".join(part for part in (json_message, stderr, stdout) if part)
    excerpt = _first_line(json_message or "") or _first_line(stderr) or _first_line(stdout) or "no output"
    cause = f"exit {returncode}: {excerpt}"
    if returncode == EXIT_AUTH or (_AUTH_PATTERNS.search(text) and not _RATE_PATTERNS.search(text)):
        if _LOGIN_NEEDED.search(text):
            cause = f"exit {returncode}: {GOOGLE_LOGIN_NEEDED}"
        return GeminiFailure(FailureKind.AUTH, cause)
    if returncode == EXIT_UNTRUSTED or _TRUST_PATTERNS.search(text):
        return GeminiFailure(FailureKind.UNTRUSTED_FOLDER, cause)
    if returncode == EXIT_RATE_LIMITED or _RATE_PATTERNS.search(text):
        return GeminiFailure(FailureKind.RATE_LIMIT, cause)
    if returncode == EXIT_CONFIG or _CONFIG_PATTERNS.search(text):
        return GeminiFailure(FailureKind.CONFIG, cause)
    return GeminiFailure(FailureKind.OTHER, cause)


def classify_timeout(timeout_s: float, stderr: str) -> GeminiFailure:
    # The real CLI retries 429s internally for minutes, so a timeout whose stderr shows 429s is
    # really a rate limit and deserves the long backoff.
    if _RATE_PATTERNS.search(stderr):
        return GeminiFailure(FailureKind.RATE_LIMIT, f"no answer within {timeout_s:.0f}s while the API answered 429")
    return GeminiFailure(FailureKind.TIMEOUT, f"no answer within {timeout_s:.0f}s; the process group was killed")
