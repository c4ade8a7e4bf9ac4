"""Cloudflare's ``wrangler`` CLI as a Dagster resource: one time-boxed, classified site deploy.

``WranglerResource.deploy`` optionally runs the operator's site build command (through the
shell, in the data root), then ``wrangler pages deploy SITE_DIR --project-name P --branch B``
with stdin closed, in its own process group so a timeout kills every child. The Cloudflare API
token reaches the resource only through ``dg.EnvVar`` and the subprocess only through its
allow-listed environment (``child_env``: the build sees no credential, wrangler only Cloudflare's):
it is never on a command line, in a log line or in metadata (all output is redacted before anyone
sees it). Without a token there is nothing to deploy with: the asset
reports a skip instead of calling wrangler (see ``nh_assets.publishing.deployment``).

Failures come back as ``DeployFailure`` with a one-line cause, a fix and whether retrying can
help (network trouble and timeouts can; a rejected token or an unknown project cannot).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
from pydantic import Field

from nh_assets import subprocesses
from nh_assets.child_env import SITE_BUILD, WRANGLER, child_env
from nh_assets.redaction import Redactor

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"

# wrangler ends a deploy with "✨ Deployment complete! Take a peek over at https://<id>.<host>.pages.dev".
# <host> is the project's pages.dev subdomain, which Cloudflare may suffix when the project's
# name was taken (neurohelix-1dq), so only the 8-hex-digit deployment label is anchored.
_DEPLOY_URL = re.compile(r"https://(?P<id>[0-9a-f]{8})\.(?P<host>[a-z0-9-]+)\.pages\.dev\b")
_ALIAS_URL = re.compile(r"Deployment alias URL:\s*(?P<url>https://\S+)")
_UPLOADED = re.compile(r"Uploaded (?P<n>\d+) files?")
_ERROR_LINE = re.compile(r"\[ERROR\]\s*(?P<msg>.+)")
# Node's network errors as wrangler reports them: worth a retry.
_TRANSIENT = ("fetch failed", "econnreset", "etimedout", "enotfound", "eai_again", "socket hang up")


class DeployFailure(Exception):
    """A deploy that did not happen: ``cause`` and ``fix`` are one line each."""

    def __init__(self, cause: str, fix: str, *, retryable: bool = False, output_tail: str = ""):
        self.cause = cause
        self.fix = fix
        self.retryable = retryable
        self.output_tail = output_tail
        super().__init__(f"{cause} — {fix}")


@dataclass(frozen=True)
class Deployment:
    url: str | None
    deployment_id: str | None
    alias_url: str | None
    files_uploaded: int | None
    duration_s: float
    build_duration_s: float | None

    def metadata(self, *, project: str, branch: str) -> dict[str, dg.MetadataValue]:
        metadata: dict[str, dg.MetadataValue] = {
            "cloudflare.status": dg.MetadataValue.text("deployed"),
            "cloudflare.project": dg.MetadataValue.text(project),
            "cloudflare.branch": dg.MetadataValue.text(branch),
            "cloudflare.deployment_url": dg.MetadataValue.url(self.url)
            if self.url
            else dg.MetadataValue.text("unknown (not found in wrangler's output)"),
            "cloudflare.deployment_id": dg.MetadataValue.text(self.deployment_id or "unknown"),
            "cloudflare.duration_s": dg.MetadataValue.float(round(self.duration_s, 3)),
        }
        if self.alias_url:
            metadata["cloudflare.alias_url"] = dg.MetadataValue.url(self.alias_url)
        if self.files_uploaded is not None:
            metadata["cloudflare.files_uploaded"] = dg.MetadataValue.int(self.files_uploaded)
        if self.build_duration_s is not None:
            metadata["nh.site_build_duration_s"] = dg.MetadataValue.float(round(self.build_duration_s, 3))
        return metadata


def parse_deploy_output(output: str) -> tuple[str | None, str | None, str | None, int | None]:
    """(url, deployment id, alias url, files uploaded) from wrangler's output; None when absent."""
    url = deployment_id = None
    lines = output.splitlines()
    # The "Deployment complete" line names the deployment; any other pages.dev URL is a fallback.
    for line in sorted(lines, key=lambda l: "Deployment complete" not in l):
        match = _DEPLOY_URL.search(line)
        if match:
            url, deployment_id = match.group(0), match.group("id")
            break
    alias = _ALIAS_URL.search(output)
    uploaded = _UPLOADED.search(output)
    return url, deployment_id, alias.group("url") if alias else None, int(uploaded.group("n")) if uploaded else None


def classify_deploy_error(returncode: int, output: str, *, project: str) -> DeployFailure:
    """One-line cause and fix for a failed ``wrangler pages deploy``."""
    errors = [m.group("msg").strip() for m in _ERROR_LINE.finditer(output)]
    # wrangler prints "[ERROR] A request to the Cloudflare API (...) failed." and the API's reason
    # on a following indented line; the reason is the useful part.
    reason_lines = [line.strip() for line in output.splitlines() if re.search(r"\[code: \d+\]", line)]
    cause_text = reason_lines[0] if reason_lines else (errors[0] if errors else _last_line(output) or "no output")
    cause = f"wrangler pages deploy failed (exit {returncode}): {cause_text}"
    lowered = output.lower()
    tail = output[-2000:]
    if "[code: 10000]" in output or "authentication error" in lowered or "invalid api token" in lowered:
        return DeployFailure(
            cause,
            "Cloudflare rejected the token: create one with Account › Cloudflare Pages › Edit and "
            f"export {TOKEN_ENV}",
            output_tail=tail,
        )
    if "[code: 8000007]" in output or "project not found" in lowered:
        return DeployFailure(
            cause,
            f"create the Pages project once (wrangler pages project create {project} "
            "--production-branch production) or set NH_CLOUDFLARE_PROJECT to an existing project",
            output_tail=tail,
        )
    if "more than one account" in lowered:
        return DeployFailure(cause, "export CLOUDFLARE_ACCOUNT_ID to choose the account", output_tail=tail)
    if any(s in lowered for s in _TRANSIENT) or re.search(r"\b5\d\d\b.*(error|gateway|unavailable)", lowered):
        return DeployFailure(
            cause,
            "network or Cloudflare trouble: retried automatically; check connectivity if it persists",
            retryable=True,
            output_tail=tail,
        )
    return DeployFailure(
        cause, "run the same wrangler pages deploy command by hand to see its full output", output_tail=tail
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class WranglerResource(dg.ConfigurableResource):
    """Deploys the static site directory to Cloudflare Pages with the wrangler CLI."""

    cli_path: str = Field(
        default="wrangler", description="Path or PATH name of the wrangler executable (NH_WRANGLER_CLI)."
    )
    project_name: str = Field(default="neurohelix", description="Cloudflare Pages project (NH_CLOUDFLARE_PROJECT).")
    branch: str = Field(default="production", description="Pages branch deployed to; production is the live site.")
    site_dir: str = Field(description="Directory uploaded by wrangler (NH_SITE_DIR).")
    build_command: str = Field(
        default="", description="Shell command run before each deploy, empty for none (NH_SITE_BUILD_COMMAND)."
    )
    build_cwd: str = Field(description="Working directory of the build command: the data root (NH_DATA_ROOT).")
    api_token: str = Field(
        default="",
        description=f"Cloudflare API token, from {TOKEN_ENV} through EnvVar; empty means deployments are skipped.",
    )
    timeout_s: float = Field(default=600.0, description="Seconds allowed to the build command and to wrangler, each.")
    kill_grace_s: float = Field(default=5.0, description="Seconds between SIGTERM and SIGKILL on timeout.")

    @property
    def has_token(self) -> bool:
        return bool(self.api_token.strip())

    def command(self) -> list[str]:
        project, branch = ["--project-name", self.project_name], ["--branch", self.branch]
        return [self.cli_path, "pages", "deploy", self.site_dir, *project, *branch]

    def deploy(self, log: Callable[[str], None] = lambda _msg: None) -> Deployment:
        """Build (if configured) and deploy once; raises DeployFailure. Needs a token."""
        if not self.has_token:
            raise DeployFailure(f"{TOKEN_ENV} is not set", f"export {TOKEN_ENV} and reload the code location")
        cli = shutil.which(self.cli_path)
        if cli is None:
            raise DeployFailure(
                f"wrangler {self.cli_path!r} not found or not executable",
                "install it (npm install -g wrangler) or set NH_WRANGLER_CLI to its path",
            )
        build_duration = self._build(log) if self.build_command.strip() else None
        site = Path(self.site_dir)
        if not site.is_dir() or not any(site.iterdir()):
            raise DeployFailure(
                f"site directory {site} is missing or empty",
                "materialize site_payload_exporter first, or point NH_SITE_DIR (or the build command's output) "
                "at the built site",
            )
        env = child_env(WRANGLER, **{TOKEN_ENV: self.api_token, "WRANGLER_SEND_METRICS": "false"})
        args = [cli, *self.command()[1:]]
        log(f"running: {' '.join(args)}")
        started = time.monotonic()
        output, returncode = self._run(args, env=env, cwd=self.build_cwd, shell=False, what="wrangler pages deploy")
        duration = time.monotonic() - started
        if returncode != 0:
            raise classify_deploy_error(returncode, output, project=self.project_name)
        url, deployment_id, alias, uploaded = parse_deploy_output(output)
        if url is None:
            log("wrangler exited 0 but printed no *.pages.dev deployment URL; recorded as unknown")
        return Deployment(url, deployment_id, alias, uploaded, duration, build_duration)

    def _build(self, log: Callable[[str], None]) -> float:
        env = child_env(SITE_BUILD)  # no credential: a build needs none
        Path(self.build_cwd).mkdir(parents=True, exist_ok=True)
        log(f"running site build command in {self.build_cwd}")
        started = time.monotonic()
        output, returncode = self._run(
            self.build_command, env=env, cwd=self.build_cwd, shell=True, what="site build command"
        )
        if returncode != 0:
            raise DeployFailure(
                f"site build command failed (exit {returncode}): {_last_line(output) or 'no output'}",
                "fix NH_SITE_BUILD_COMMAND (it runs through the shell in the data root) or unset it",
                output_tail=output[-2000:],
            )
        return time.monotonic() - started

    def _redact(self, text: str) -> str:
        return Redactor.from_env(extra=[self.api_token.strip()] if self.has_token else [])(text)

    def _run(self, args: list[str] | str, *, env: dict[str, str], cwd: str, shell: bool, what: str) -> tuple[str, int]:
        """Run to completion or timeout; returns (redacted stdout+stderr, exit code)."""
        try:
            done = subprocesses.run(
                args, env=env, cwd=cwd, timeout_s=self.timeout_s, kill_grace_s=self.kill_grace_s,
                merge_stderr=True, shell=shell, redact=self._redact,
            )
        except OSError as exc:
            raise DeployFailure(
                f"cannot start the {what}: {exc.strerror or exc}", "check the executable and the working directory"
            ) from None
        if done.timed_out:
            raise DeployFailure(
                f"{what} did not finish within {self.timeout_s:.0f}s and was killed",
                "retried automatically; check the network, or raise the resource's timeout_s",
                retryable=True,
            )
        return done.stdout, done.returncode
