"""Publishing: the daily ``site_deployment`` asset, deploying the static site after each payload.

One partition per day, downstream of that day's ``site_payload_exporter``; it uploads the whole
site directory (every day's payload, not only its own) through ``WranglerResource``, and its
materialization records where the deployment went (URL, deployment id, duration). An eager
automation condition deploys as soon as a new payload lands, once the automation sensor runs.

Without ``CLOUDFLARE_API_TOKEN`` nothing can be deployed, and that is a normal state for a
newcomer or a demo, not an error. The asset is declared ``output_required=False`` and then
yields no output: the step succeeds (no red run, no retry loop), the partition stays *missing*
rather than claiming a deployment that never happened, and an ``AssetObservation`` on the
partition carries the reason and the fix so the skip is visible in the asset's event history.
"""

from pathlib import Path

import dagster as dg

from nh_assets.formats import FORMATS
from nh_assets.registry import PromptSpec, Registry
from nh_assets.publishing.wrangler import TOKEN_ENV, DeployFailure, WranglerResource

DEPLOYMENT_ASSET = "site_deployment"
DEPLOY_POOL = "cloudflare_deploy"


def payload_spec(registry: Registry) -> PromptSpec | None:
    """The registry row whose format is the published document (the site payload), if any."""
    return next((p for p in registry.prompts if FORMATS[p.output_format].published), None)


def build_site_deployment_asset(
    *, registry: Registry, partitions_def: dg.DailyPartitionsDefinition, data_root: Path
) -> dg.AssetsDefinition:
    payload = payload_spec(registry)
    assert payload is not None, "build_site_deployment_asset needs a site_payload row"

    @dg.asset(
        name=DEPLOYMENT_ASSET,
        group_name="publish",
        description=(
            "The static site deployed to Cloudflare Pages (production branch) after this day's "
            f"payload (`{payload.expected_outputs}`). Uploads the whole site directory. Skipped, not "
            f"failed, while {TOKEN_ENV} is unset."
        ),
        kinds={"cloudflare"},
        partitions_def=partitions_def,
        deps=[dg.AssetDep(payload.prompt_id)],
        # React to each new payload, but never publish one whose blocking checks (report
        # sections, tags, payload schema) failed: blocking alone only stops the same run.
        automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
        output_required=False,
        # One deploy at a time machine-wide: two concurrent uploads of the same site race.
        pool=DEPLOY_POOL,
        # Only failures marked retryable (network trouble, timeouts) use it; see DeployFailure.
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
        tags={"nh/wave": "publish"},
    )
    def site_deployment(context: dg.AssetExecutionContext, wrangler: WranglerResource):
        day = context.partition_key
        payload_path = data_root / payload.output_path(day)
        if not wrangler.has_token:
            reason = f"skipped: {TOKEN_ENV} is not set, so nothing was deployed"
            context.log.warning(f"{reason}; export {TOKEN_ENV} and reload the code location to publish")
            yield dg.AssetObservation(
                asset_key=context.asset_key,
                partition=day,
                description=reason,
                metadata={
                    "cloudflare.status": dg.MetadataValue.text("skipped"),
                    "nh.skip_reason": dg.MetadataValue.text(f"{TOKEN_ENV} not set"),
                    "nh.fix": dg.MetadataValue.text(
                        f"export {TOKEN_ENV} (a token with Cloudflare Pages: Edit) and reload"
                    ),
                },
            )
            return
        if not payload_path.is_file():
            raise dg.Failure(
                description=(
                    f"site_deployment {day}: payload {payload_path} is missing — materialize "
                    f"{payload.prompt_id} for {day} first"
                ),
                allow_retries=False,
            )
        try:
            deployment = wrangler.deploy(context.log.info)
        except DeployFailure as exc:
            metadata = {"cloudflare.status": dg.MetadataValue.text("failed")}
            if exc.output_tail:
                metadata["nh.output_tail"] = dg.MetadataValue.md(f"```\n{exc.output_tail}\n```")
            raise dg.Failure(
                description=f"site_deployment {day}: {exc.cause} — fix: {exc.fix}",
                metadata=metadata,
                allow_retries=exc.retryable,
            ) from None
        metadata = deployment.metadata(project=wrangler.project_name, branch=wrangler.branch)
        metadata["nh.payload_path"] = dg.MetadataValue.path(str(payload_path))
        metadata["nh.site_dir"] = dg.MetadataValue.path(wrangler.site_dir)
        yield dg.MaterializeResult(metadata=metadata)

    return site_deployment
