"""The running Dagster instance, reached through its webserver's GraphQL API.

Runs and backfills are submitted here, not executed in ``nh``'s process: a run launched through
GraphQL enters the instance's run queue, so the queue's ``dagster/partition`` limit (one run per
day) holds for it as for the schedule's and the UI's, and a backfill is handed to the daemon.
``dagster_graphql.DagsterGraphQLClient`` has no backfill call and wraps errors in messages that
repeat the whole query, so this module posts the few documents it needs (checked against the
schema of the installed dagster-graphql 1.13) and turns every failure into one line.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from nh_assets.cli.environment import START_HINT
from nh_assets.cli.exit_codes import UNAVAILABLE, NhError

PARTITION_TAG = "dagster/partition"
# "dagster._core.definitions.events.Failure: <description>": the description is what the operator needs.
_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Failure|Exception): ")
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
# Backfill states after which nothing more will run.
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

_JOB_LOCATIONS = """
query { repositoriesOrError { __typename
  ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  ... on PythonError { message } } }"""

_LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on Error { message } } }"""

_RUN = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { runId status tags { key value } stepStats { stepKey status } }
  ... on Error { message } } }"""

_FAILURES = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { eventConnection(limit: 5000) { events { __typename
    ... on ExecutionStepFailureEvent { stepKey message error { message } } } } } } }"""

_RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter, limit: 20) { __typename
  ... on Runs { results { runId status } }
  ... on Error { message } } }"""

_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) { __typename
  ... on LaunchBackfillSuccess { backfillId }
  ... on Error { message } } }"""

_BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { id status numPartitions
    error { message }
    assetBackfillData { assetBackfillStatuses { __typename
      ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted numPartitionsInProgress
        numPartitionsMaterialized numPartitionsFailed } } } }
  ... on Error { message } } }"""

_DAEMONS = """
query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""


@dataclass(frozen=True)
class RunProgress:
    run_id: str
    status: str
    steps: dict[str, str]  # step key -> SUCCESS / FAILURE / SKIPPED / IN_PROGRESS

    @property
    def finished(self) -> bool:
        return self.status in {"SUCCESS", "FAILURE", "CANCELED"}

    def line(self) -> str:
        counts = {s: sum(v == s for v in self.steps.values()) for s in ("SUCCESS", "IN_PROGRESS", "FAILURE")}
        return (
            f"run {self.run_id[:8]}: {self.status} · {counts['SUCCESS']} steps done, "
            f"{counts['IN_PROGRESS']} running, {counts['FAILURE']} failed"
        )


@dataclass(frozen=True)
class BackfillProgress:
    backfill_id: str
    status: str
    targeted: int
    materialized: int
    in_progress: int
    failed: int
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in BACKFILL_DONE

    @property
    def succeeded(self) -> bool:
        return self.status in {"COMPLETED", "COMPLETED_SUCCESS"} and self.failed == 0

    def line(self) -> str:
        return (
            f"backfill {self.backfill_id}: {self.status} · {self.materialized}/{self.targeted} asset partitions "
            f"materialized, {self.in_progress} running, {self.failed} failed"
        )


class Webserver:
    """One Dagster webserver; every method raises NhError with a one-line cause and fix."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def backfill_url(self, backfill_id: str) -> str:
        return f"{self.url}/runs/b/{backfill_id}"

    def graphql(self, document: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": document, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise NhError(f"{self.url} answered HTTP {exc.code} to GraphQL — is it a Dagster webserver? {START_HINT}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NhError(f"no Dagster webserver at {self.url} ({reason}) — {START_HINT}", UNAVAILABLE) from None
        except ValueError:
            raise NhError(f"{self.url}/graphql did not answer JSON — is NH_WEBSERVER_URL a Dagster webserver?")
        if body.get("errors"):
            first = str(body["errors"][0].get("message", body["errors"][0])).splitlines()[0]
            raise NhError(f"the webserver refused the request: {first[:300]}")
        return body["data"]

    def _job_location(self, job_name: str) -> tuple[str, str]:
        found = self.graphql(_JOB_LOCATIONS)["repositoriesOrError"]
        if found["__typename"] != "RepositoryConnection":
            raise NhError(f"the webserver cannot list its code locations: {found.get('message', found['__typename'])}")
        places = [
            (node["location"]["name"], node["name"])
            for node in found["nodes"]
            if any(job["name"] == job_name for job in node["jobs"])
        ]
        if len(places) != 1:
            raise NhError(
                f"the webserver at {self.url} has {'no' if not places else len(places)} job(s) named {job_name} — "
                "is it serving this project's workspace.yaml? Reload the nh_assets code location in the UI"
            )
        return places[0]

    def launch_run(self, job_name: str, partition: str, asset_keys: Sequence[str] | None) -> str:
        """Submit one run of ``job_name`` for ``partition`` (to the run queue); returns its id."""
        location, repository = self._job_location(job_name)
        selector: dict = {"repositoryLocationName": location, "repositoryName": repository, "jobName": job_name}
        if asset_keys is not None:
            selector["assetSelection"] = [{"path": [key]} for key in asset_keys]
        params = {
            "selector": selector,
            "runConfigData": {},
            "executionMetadata": {
                "tags": [{"key": PARTITION_TAG, "value": partition}, {"key": "nh/cli", "value": "run"}]
            },
        }
        launched = self.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise NhError(f"run not launched ({launched['__typename']}): {_first_line(launched.get('message'))}")
        return launched["run"]["runId"]

    def run_progress(self, run_id: str) -> RunProgress:
        found = self.graphql(_RUN, {"id": run_id})["runOrError"]
        if found["__typename"] != "Run":
            raise NhError(f"run {run_id}: {_first_line(found.get('message')) or found['__typename']}")
        steps = {s["stepKey"]: s["status"] or "IN_PROGRESS" for s in found["stepStats"]}
        return RunProgress(found["runId"], found["status"], steps)

    def failure_causes(self, run_id: str) -> dict[str, str]:
        """Step key -> the first line of its failure (the asset's ``dg.Failure`` says cause and fix)."""
        found = self.graphql(_FAILURES, {"id": run_id})["runOrError"]
        if found["__typename"] != "Run":
            return {}
        causes = {}
        for event in found["eventConnection"]["events"]:
            if event["__typename"] == "ExecutionStepFailureEvent" and event.get("stepKey"):
                message = _first_line((event.get("error") or {}).get("message") or event["message"])
                causes[event["stepKey"]] = _EXCEPTION_PREFIX.sub("", message)
        return causes

    def runs_in_flight(self, partition: str) -> list[tuple[str, str]]:
        """(run id, status) of the runs of ``partition`` that are queued or running."""
        variables = {"filter": {"tags": [{"key": PARTITION_TAG, "value": partition}], "statuses": IN_FLIGHT}}
        found = self.graphql(_RUNS, variables)["runsOrError"]
        if found["__typename"] != "Runs":
            raise NhError(f"cannot list runs: {_first_line(found.get('message'))}")
        return [(r["runId"], r["status"]) for r in found["results"]]

    def launch_backfill(self, start: str, end: str, asset_keys: Sequence[str], title: str) -> str:
        """A multi-run asset backfill of exactly ``start..end`` for every asset: ``partitionsByAssets``
        rather than ``partitionNames``, which Dagster applies to the selection's roots and maps
        downstream (shifting ``novelty_filter`` a day past the range, nh_assets_tests/e2e/test_concurrency)."""
        rng = {"range": {"start": start, "end": end}}
        params = {
            "partitionsByAssets": [{"assetKey": {"path": [key]}, "partitions": rng} for key in asset_keys],
            "title": title,
            "tags": [{"key": "nh/cli", "value": "backfill"}],
        }
        launched = self.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise NhError(f"backfill not launched ({launched['__typename']}): {_first_line(launched.get('message'))}")
        return launched["backfillId"]

    def backfill_progress(self, backfill_id: str) -> BackfillProgress:
        found = self.graphql(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if found["__typename"] != "PartitionBackfill":
            raise NhError(f"backfill {backfill_id}: {_first_line(found.get('message')) or found['__typename']}")
        counts = [
            s for s in ((found.get("assetBackfillData") or {}).get("assetBackfillStatuses") or [])
            if s["__typename"] == "AssetPartitionsStatusCounts"
        ]
        return BackfillProgress(
            backfill_id=found["id"],
            status=found["status"],
            targeted=sum(s["numPartitionsTargeted"] for s in counts),
            materialized=sum(s["numPartitionsMaterialized"] for s in counts),
            in_progress=sum(s["numPartitionsInProgress"] for s in counts),
            failed=sum(s["numPartitionsFailed"] for s in counts),
            error=_first_line((found.get("error") or {}).get("message")),
        )

    def unhealthy_daemons(self, wanted: Sequence[str]) -> list[str]:
        """Which of the daemons ``wanted`` (e.g. QUEUED_RUN_COORDINATOR, BACKFILL) are not running."""
        statuses = self.graphql(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        healthy = {s["daemonType"]: bool(s["healthy"]) for s in statuses}
        return [name for name in wanted if not healthy.get(name, False)]


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else ""
