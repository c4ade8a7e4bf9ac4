"""Deploy the built site with wrangler, then check that Cloudflare lists it before calling it done.

``wrangler pages deploy`` printing "Deployment complete" is not proof: the old pipeline counted a
day as published only once ``wrangler pages deployment list`` showed the new deployment. This
resource extends the project's ``WranglerResource`` (same fields, same classified failures,
same token handling) with that verification: the deployment the deploy printed must be listed
for the project, by URL or id, and its latest stage must have succeeded. A deployment still
building is asked about again a few times; absent, failed or unparseable is a ``DeployFailure``
with the cause and the fix, never retried (a retry would upload a second deployment). The site
directory is a link replaced by every build, so the deploy
uploads the build it resolves to at that moment, never a tree that changes under it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import Field

from nh_assets.child_env import WRANGLER, child_env
from nh_assets.publishing.wrangler import TOKEN_ENV, Deployment, DeployFailure, WranglerResource, classify_deploy_error

# `Status` is a relative time ("2 minutes ago") once the latest stage succeeded, else its state.
_NOT_YET = {"Active", "Idle", "Queued"}
_FAILED = {"Failure", "Failed", "Canceled", "Cancelled", "Skipped"}


@dataclass(frozen=True)
class VerifiedDeployment:
    deployment_id: str
    url: str
    environment: str
    status: str
    attempts: int


def parse_deployment_list(output: str) -> list[dict]:
    """The JSON array ``wrangler pages deployment list --json`` prints (warnings may precede it)."""
    start, end = output.find("["), output.rfind("]")
    if start == -1 or end < start:
        raise ValueError("no JSON array in the output")
    rows = json.loads(output[start : end + 1])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("the JSON is not a list of deployments")
    return rows


def find_deployment(rows: list[dict], deployment: Deployment) -> dict | None:
    for row in rows:
        if deployment.url and str(row.get("Deployment", "")).rstrip("/") == deployment.url.rstrip("/"):
            return row
        if deployment.deployment_id and str(row.get("Id", "")).startswith(deployment.deployment_id):
            return row
    return None


class PagesWranglerResource(WranglerResource):
    """``WranglerResource`` plus ``deploy_verified``: deploy, then confirm in the deployment list."""

    verify_attempts: int = Field(default=4, ge=1, description="Times to ask for the deployment list before failing.")
    verify_delay_s: float = Field(default=2.0, ge=0, description="Seconds between those attempts.")

    def command(self) -> list[str]:
        site = str(Path(self.site_dir).resolve())
        return [self.cli_path, "pages", "deploy", site, "--project-name", self.project_name, "--branch", self.branch]

    def list_command(self) -> list[str]:
        return [self.cli_path, "pages", "deployment", "list", "--project-name", self.project_name, "--json"]

    def deploy_verified(self, log: Callable[[str], None] = lambda _m: None) -> tuple[Deployment, VerifiedDeployment]:
        deployment = self.deploy(log)
        return deployment, self.verify(deployment, log)

    def verify(self, deployment: Deployment, log: Callable[[str], None] = lambda _m: None) -> VerifiedDeployment:
        listing = f"wrangler pages deployment list --project-name {self.project_name}"
        if not deployment.url and not deployment.deployment_id:
            raise DeployFailure(
                "wrangler printed no deployment URL, so the new deployment cannot be verified",
                f"run `{listing}` to check it by hand; if wrangler's output changed, update the parser in "
                "nh_assets/publishing/wrangler.py",
            )
        cli = shutil.which(self.cli_path) or self.cli_path
        env = child_env(WRANGLER, **{TOKEN_ENV: self.api_token, "WRANGLER_SEND_METRICS": "false"})
        row: dict | None = None
        for attempt in range(1, self.verify_attempts + 1):
            output, returncode = self._run(
                [cli, *self.list_command()[1:]], env=env, cwd=self.build_cwd, shell=False, what=listing
            )
            if returncode != 0:
                failure = _classify(returncode, output, self.project_name)
                raise DeployFailure(
                    f"verification failed: {failure.cause}",
                    failure.fix,
                    retryable=failure.retryable,
                    output_tail=failure.output_tail,
                )
            try:
                rows = parse_deployment_list(output)
            except ValueError as exc:
                raise DeployFailure(
                    f"verification failed: cannot read `{listing} --json` ({exc})",
                    "check that the pinned wrangler in package.json supports --json (wrangler 4.x does)",
                    output_tail=output[-2000:],
                ) from None
            row = find_deployment(rows, deployment)
            status = str(row.get("Status", "")) if row else ""
            if row and status in _FAILED:
                raise DeployFailure(
                    f"deployment {deployment.deployment_id} is listed with status {status}",
                    "open the deployment's build log in the Cloudflare dashboard "
                    f"({row.get('Build', 'Pages › Deployments')}) "
                    "and materialize site_deployment again once it is fixed",
                )
            if row and status and status not in _NOT_YET:
                log(f"verified: deployment {row.get('Id')} listed, status {status}")
                return VerifiedDeployment(
                    str(row.get("Id", "")),
                    str(row.get("Deployment", "")),
                    str(row.get("Environment", "")),
                    status,
                    attempt,
                )
            if attempt < self.verify_attempts:
                time.sleep(self.verify_delay_s)
        waited = f"after {self.verify_attempts} attempt(s)"
        if row is None:
            raise DeployFailure(
                f"deployment {deployment.deployment_id} ({deployment.url}) is not in `{listing}` {waited}",
                f"check project {self.project_name} in the Cloudflare dashboard (Workers & Pages › Deployments) and "
                "that NH_CLOUDFLARE_PROJECT names it; then materialize site_deployment again",
            )
        raise DeployFailure(
            f"deployment {deployment.deployment_id} is still {row.get('Status')} {waited}",
            "Cloudflare has not activated it yet: check it in the dashboard, then materialize site_deployment again "
            "(a retry here would upload a second deployment)",
        )


def _classify(returncode: int, output: str, project: str) -> DeployFailure:
    failure = classify_deploy_error(returncode, output, project=project)
    failure.cause = failure.cause.replace("wrangler pages deploy failed", "wrangler pages deployment list failed")
    return failure
