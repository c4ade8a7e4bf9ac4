"""``site_deployment``: upload the built site, verify it, record it, tell readers it is there.

Downstream of the unpartitioned ``site`` asset with ``eager()``, so every rebuild (today's run,
a re-run, a backfill of old days) is deployed once, not only the newest partition's. Deploys
run one at a time (``pool``); only failures wrangler classifies as transient are retried.

Without ``CLOUDFLARE_API_TOKEN`` deploying is impossible and that is normal for a newcomer or a
demo: the step succeeds without a materialization (the asset stays *missing* rather than
claiming a deployment), an ``AssetObservation`` says why and how to fix it, and the report-ready
message still goes out with the local link. Each outcome is written to
``NH_DATA_ROOT/logs/publishing/latest.json`` (URL, build duration, bundle size, file count).
"""

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from nh_assets.operations.alerts import FailureAlertResource
from nh_assets.artifacts import write_atomic
from nh_assets.data_layout import DataLayoutResource
from nh_assets.publishing.wrangler import TOKEN_ENV, DeployFailure

from nh_assets.publishing.pages_wrangler import PagesWranglerResource
from nh_assets.publishing.report_ready import mark_told, newest_message, pending_days
from nh_assets.publishing.site.site_asset import SITE_ASSET, SITE_SRC

DEPLOYMENT_ASSET = "site_deployment"
DEPLOY_POOL = "cloudflare_deploy"
PUBLISH_LOG = "logs/publishing/latest.json"


def _bundle(site_dir: Path) -> tuple[Path, int, int]:
    root = site_dir.resolve()
    count = size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            count += 1
            size += (Path(dirpath) / name).stat().st_size
    return root, count, size


def _site_build_metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(SITE_ASSET))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def build_site_deployment_asset(*, site_dir: Path, site_url: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=DEPLOYMENT_ASSET,
        group_name="publish",
        description=(
            "The built site deployed to Cloudflare Pages with wrangler and verified in `wrangler pages deployment "
            f"list`; then the report-ready message. Skipped, not failed, while {TOKEN_ENV} is unset."
        ),
        kinds={"cloudflare"},
        deps=[dg.AssetDep(SITE_ASSET)],
        automation_condition=dg.AutomationCondition.eager(),
        output_required=False,
        pool=DEPLOY_POOL,
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
        tags={"nh/wave": "publish"},
    )
    def site_deployment(
        context: dg.AssetExecutionContext,
        wrangler: PagesWranglerResource,
        alerts: FailureAlertResource,
        layout: DataLayoutResource,
    ):
        if not (site_dir.is_symlink() and site_dir.resolve().is_dir()):
            raise dg.Failure(
                description=f"site_deployment: no built site at {site_dir} — materialize the {SITE_ASSET} asset "
                "first",
                allow_retries=False,
            )
        build = _site_build_metadata(context.instance)
        root, file_count, size = _bundle(site_dir)
        summary = {
            "project": wrangler.project_name,
            "build_dir": str(root),
            "build_duration_s": build.get("nh.site.build_duration_s"),
            "bundle_bytes": size,
            "file_count": file_count,
            "newest_day": build.get("nh.site.newest_day"),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        common = {
            "nh.site.build_duration_s": dg.MetadataValue.float(float(build.get("nh.site.build_duration_s") or 0.0)),
            "nh.site.bundle_bytes": dg.MetadataValue.int(size),
            "nh.site.file_count": dg.MetadataValue.int(file_count),
            "nh.site.build_dir": dg.MetadataValue.path(str(root)),
        }
        src_dir = layout.root_path / SITE_SRC
        if not wrangler.has_token:
            reason = f"skipped: {TOKEN_ENV} is not set, so the site was built locally and not deployed"
            context.log.warning(f"{reason}; export {TOKEN_ENV} and reload the code location to publish")
            _record(layout, {**summary, "status": "skipped", "url": None, "reason": f"{TOKEN_ENV} not set"})
            _announce(context, alerts, src_dir, base_url=f"file://{site_dir}", deployed=False)
            yield dg.AssetObservation(
                asset_key=context.asset_key,
                description=reason,
                metadata={
                    **common,
                    "cloudflare.status": dg.MetadataValue.text("skipped"),
                    "nh.skip_reason": dg.MetadataValue.text(f"{TOKEN_ENV} not set"),
                    "nh.fix": dg.MetadataValue.text(
                        f"export {TOKEN_ENV} (a token with Cloudflare Pages: Edit) and reload"
                    ),
                },
            )
            return
        started = time.monotonic()
        try:
            deployment, verified = wrangler.deploy_verified(context.log.info)
        except DeployFailure as exc:
            metadata = {"cloudflare.status": dg.MetadataValue.text("failed")}
            if exc.output_tail:
                metadata["nh.output_tail"] = dg.MetadataValue.md(f"```\n{exc.output_tail}\n```")
            _record(layout, {**summary, "status": "failed", "url": None, "reason": f"{exc.cause} — {exc.fix}"})
            raise dg.Failure(
                description=f"site_deployment: {exc.cause} — fix: {exc.fix}",
                metadata=metadata,
                allow_retries=exc.retryable,
            ) from None
        metadata = {**deployment.metadata(project=wrangler.project_name, branch=wrangler.branch), **common}
        metadata["cloudflare.verified"] = dg.MetadataValue.bool(True)
        metadata["cloudflare.verified_status"] = dg.MetadataValue.text(verified.status)
        metadata["cloudflare.environment"] = dg.MetadataValue.text(verified.environment or "unknown")
        _record(
            layout,
            {
                **summary,
                "status": "deployed",
                "url": deployment.url,
                "alias_url": deployment.alias_url,
                "deployment_id": deployment.deployment_id,
                "verified": True,
                "verified_status": verified.status,
                "deploy_duration_s": round(time.monotonic() - started, 3),
            },
        )
        _announce(context, alerts, src_dir, base_url=site_url, deployed=True)
        yield dg.MaterializeResult(metadata=metadata)

    return site_deployment


def _record(layout: DataLayoutResource, summary: dict) -> None:
    write_atomic(layout.root_path / PUBLISH_LOG, (json.dumps(summary, indent=2) + "\n").encode())


def _announce(
    context: dg.AssetExecutionContext, alerts: FailureAlertResource, src_dir: Path, *, base_url: str, deployed: bool
) -> None:
    pending = pending_days(src_dir)
    text = newest_message(src_dir, pending, base_url=base_url, deployed=deployed)
    if text is None:
        context.log.info("report ready: no day changed since the last message")
        return
    context.log.info(f"report ready: {text.splitlines()[0]}")
    if not alerts.enabled:
        mark_told(src_dir, pending)
        return
    problem = alerts.post(text)
    if problem:
        # Not marked as told: the next deployment tries again.
        context.log.warning(f"report-ready message not delivered to the webhook: {problem}")
        return
    mark_told(src_dir, pending)
