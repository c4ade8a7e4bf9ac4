"""Preflight (the old ``nh diag``): is this machine ready to run the pipeline? OK / WARN / FAIL.

``python -m nh_assets.operations.preflight`` prints one verdict line per check and exits 0 when none is
FAIL; the ``preflight`` job runs the same checks inside Dagster and records them as a markdown
table (its step fails when a check does). Checked: the Gemini CLI (found, answers ``--version``
within 30 s), Gemini auth (demo mode, ``GEMINI_API_KEY``, Vertex AI or the auth type selected in
``~/.gemini/settings.json``), wrangler and the Cloudflare token, the data root's writability
and free space, the shared rate-limit bucket's usage against its limits, whether a day's
requests fit each model's declared quota (``registry/quotas.tsv``), and the Dagster instance (``DAGSTER_HOME``, storage, pool limits, run queue).

Reading the process environment is this module's purpose, but only names are ever printed:
never a key, a token or a settings value that could hold one.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Mapping, Sequence

import dagster as dg

from nh_assets import subprocesses
from nh_assets.child_env import GEMINI_CLI, WRANGLER, child_env
from nh_assets.redaction import Redactor
from nh_assets.pools import pool_limits
from nh_assets.gemini.day_budget import day_budget, requests_by_model
from nh_assets.registry import CONCURRENCY_LIMITS, RegistryError, load_registry
from nh_assets.registry.quotas import load_quotas, quotas_path
from nh_assets.gemini.rate_limit import RateLimitConfigError, SharedRateLimit
from nh_assets.gemini.rate_limit_stores import BucketStore, RateLimitStoreError, SQLiteStore, store_for
from nh_assets.publishing.wrangler import TOKEN_ENV, WranglerResource
from nh_assets.settings import Settings, SettingsError, load_settings, registry_path_from_env

VERSION_TIMEOUT_S = 30.0
MIN_FREE_BYTES = 200 * 1024 * 1024


class Level(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Verdict:
    level: Level
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.level.value:<4}  {self.check:<14}  {self.detail}"


def _redact(text: str, env: Mapping[str, str]) -> str:
    return Redactor.from_env(env)(text)


def _version(executable: str, env: Mapping[str, str], timeout_s: float) -> tuple[int | None, str]:
    """(exit code or None on timeout, first output line) of ``executable --version``."""
    with tempfile.TemporaryDirectory(prefix="nh-preflight-") as cwd:
        done = subprocesses.run(
            [executable, "--version"], env=env, cwd=cwd, timeout_s=timeout_s, kill_grace_s=0.0, merge_stderr=True
        )
    if done.timed_out:
        return None, ""
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, _redact(lines[0] if lines else "", env)[:120]


OK, WARN, FAIL = Level.OK, Level.WARN, Level.FAIL


def _for(check: str):
    """A Verdict factory for one check: ``v = _for("x"); v(OK, "detail")``."""
    return lambda level, detail: Verdict(level, check, detail)


def check_gemini_cli(cli: str, env: Mapping[str, str], timeout_s: float = VERSION_TIMEOUT_S) -> Verdict:
    v = _for("gemini_cli")
    found = shutil.which(cli, path=env.get("PATH"))
    if found is None:
        return v(FAIL, f"{cli!r} not found or not executable — install the Gemini CLI or set NH_GEMINI_CLI")
    try:
        code, first = _version(found, child_env(GEMINI_CLI, env), timeout_s)
    except OSError as exc:
        return v(FAIL, f"{found}: cannot run ({exc.strerror or exc}) — check the file")
    if code is None:
        return v(FAIL, f"{found} did not answer --version within {timeout_s:.0f}s — reinstall it or check node")
    if code != 0:
        return v(FAIL, f"{found} --version exited {code}: {first or 'no output'}")
    return v(OK, f"{found} version {first or '?'}")


def _dotenv_defines(path: Path, name: str) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(re.match(rf"\s*(export\s+)?{name}\s*=\s*\S", line) for line in text.splitlines())


def _selected_auth_type(settings_file: Path) -> str | None:
    """The auth type the CLI's settings.json selects (current and pre-0.20 layouts); raises ValueError."""
    doc = json.loads(settings_file.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    auth = (doc.get("security") or {}).get("auth") or {}
    return auth.get("selectedType") or doc.get("selectedAuthType")


def check_gemini_auth(env: Mapping[str, str], *, demo: bool) -> Verdict:
    v = _for("gemini_auth")
    if demo:
        return v(OK, "NH_DEMO=1: the project's fake Gemini API on 127.0.0.1 answers; no credentials used")
    if env.get("GEMINI_API_KEY", "").strip():
        return v(OK, "GEMINI_API_KEY is set (value not shown)")
    vertex = env.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in {"1", "true"}
    if vertex and (env.get("GOOGLE_API_KEY") or env.get("GOOGLE_CLOUD_PROJECT")):
        return v(OK, "Vertex AI selected (GOOGLE_GENAI_USE_VERTEXAI) with a project or key set")
    # The CLI also loads .env files and its own settings, looked up under its home directory.
    home = Path(env.get("GEMINI_CLI_HOME") or env.get("HOME") or Path.home())
    gemini_dir = home / ".gemini"
    for dotenv in (gemini_dir / ".env", home / ".env"):
        if _dotenv_defines(dotenv, "GEMINI_API_KEY"):
            return v(OK, f"GEMINI_API_KEY is defined in {dotenv} (value not shown)")
    settings_file = gemini_dir / "settings.json"
    selected = None
    if settings_file.is_file():
        try:
            selected = _selected_auth_type(settings_file)
        except (OSError, ValueError) as exc:
            return v(WARN, f"{settings_file} is unreadable ({type(exc).__name__}) — fix or delete it")
    if selected == "oauth-personal":
        if (gemini_dir / "oauth_creds.json").is_file():
            return v(OK, f"{settings_file} selects oauth-personal and a cached login exists")
        return v(FAIL, f"{settings_file} selects oauth-personal but no cached login — run `gemini` once to log in")
    if selected == "gemini-api-key":
        return v(FAIL, f"{settings_file} selects gemini-api-key but GEMINI_API_KEY is not set — export it")
    if selected:
        return v(WARN, f"{settings_file} selects {selected!s:.40}; not verified here")
    return v(
        FAIL,
        "no Gemini auth found — export GEMINI_API_KEY, run `gemini` once to log in, "
        "or set NH_DEMO=1 to try the fake API",
    )


def check_wrangler(
    cli: str, env: Mapping[str, str], *, token_present: bool, timeout_s: float = VERSION_TIMEOUT_S
) -> Verdict:
    v = _for("wrangler")
    found = shutil.which(cli, path=env.get("PATH"))
    # Without a token deployments are skipped anyway, so a missing wrangler only matters with one.
    missing = FAIL if token_present else WARN
    if found is None:
        return v(missing, f"{cli!r} not found — npm install -g wrangler, or set NH_WRANGLER_CLI to its path")
    try:
        code, first = _version(found, child_env(WRANGLER, env), timeout_s)
    except OSError as exc:
        return v(missing, f"{found}: cannot run ({exc.strerror or exc})")
    if code != 0:
        return v(missing, f"{found} --version {'timed out' if code is None else f'exited {code}'}")
    return v(OK, f"{found} version {first or '?'}")


def check_cloudflare_token(token_present: bool) -> Verdict:
    v = _for("cloudflare")
    if token_present:
        return v(OK, f"{TOKEN_ENV} is set (value not shown)")
    return v(WARN, f"{TOKEN_ENV} is not set — site_deployment is skipped until it is")


def check_data_root(root: Path) -> Verdict:
    v = _for("data_root")
    if root.exists() and not root.is_dir():
        return v(FAIL, f"{root} exists but is not a directory — set NH_DATA_ROOT to a directory")
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return v(FAIL, f"{root} does not exist and cannot be created — fix NH_DATA_ROOT or its permissions")
        return v(WARN, f"{root} does not exist yet; the first run creates it")
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".nh-preflight-"):
            pass
    except OSError as exc:
        return v(FAIL, f"{root} is not writable ({exc.strerror or exc}) — fix its permissions or NH_DATA_ROOT")
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        return v(WARN, f"{root} is writable but only {free // (1024 * 1024)} MiB free")
    return v(OK, f"{root} is writable ({free // (1024 * 1024 * 1024)} GiB free)")


def check_rate_limit(store: BucketStore | Path, per_minute: int, per_day: int) -> Verdict:
    v = _for("rate_limit")
    if isinstance(store, Path):
        store = SQLiteStore(store)
    if isinstance(store, SQLiteStore) and not store.db_path.exists():
        return v(OK, f"no Gemini requests recorded yet (limits {per_minute}/min, {per_day}/day; bucket {store.label})")
    try:
        limiter = SharedRateLimit(store, per_minute, per_day)
    except (RateLimitConfigError, RateLimitStoreError) as exc:
        return v(FAIL, str(exc))
    except Exception as exc:  # noqa: BLE001 - a corrupt bucket is a verdict, not a crash
        return v(FAIL, f"cannot read the shared bucket {store.label} ({type(exc).__name__}) — delete it to reset")
    try:
        usage = limiter.usage()
    finally:
        limiter.close()
    detail = f"{usage['last_minute']}/{per_minute} in the last minute, {usage['last_day']}/{per_day} in the last 24 h"
    if usage["last_day"] >= per_day:
        return v(FAIL, f"daily cap used up: {detail} — wait, or raise NH_RATE_PER_DAY")
    if usage["last_day"] >= 0.8 * per_day:
        return v(WARN, f"daily cap nearly used: {detail}")
    return v(OK, detail)


def check_day_fits(registry_path: Path, settings: Settings, postgres_url: str) -> Verdict:
    """WARN when a day's requests on some model exceed what its declared quota leaves today."""
    v = _for("model_quotas")
    try:
        registry = load_registry(registry_path)
        quotas = load_quotas(quotas_path(registry.path))
        budgets = day_budget(
            requests_by_model(registry.prompts), quotas, backend=settings.rate_limit_backend,
            rate_limit_db=settings.rate_limit_db, postgres_url=postgres_url,
        )
    except RegistryError as exc:
        return v(FAIL, f"{exc.problems[0]} (+{len(exc.problems) - 1} more; python -m nh_assets.registry validate)")
    except Exception as exc:  # noqa: BLE001 - an unreadable store is a verdict, not a crash
        return v(WARN, f"cannot read the per-model buckets ({type(exc).__name__}); the day's fit is unknown")
    short = [b for b in budgets if not b.fits]
    if short:
        fix = "give those rows a fallback_model, raise the tier (and registry/quotas.tsv), or spread the day"
        return v(WARN, "a day does not fit: " + "; ".join(b.describe() for b in short) + f" — {fix}")
    return v(OK, "; ".join(b.describe() for b in budgets) or "no model rows")


def check_instance(instance: dg.DagsterInstance | None, env: Mapping[str, str]) -> list[Verdict]:
    home = env.get("DAGSTER_HOME", "")
    if instance is None:
        detail = (
            "DAGSTER_HOME is not set — `dagster dev` would keep runs in a temporary instance; "
            "export DAGSTER_HOME=$PWD/dagster_home (scripts/dev.sh does)"
        )
        return [Verdict(WARN, "instance", detail)]
    storage = type(instance.event_log_storage).__name__
    run_storage = type(instance.run_storage).__name__
    where = f"DAGSTER_HOME={home}" if home else "instance without DAGSTER_HOME"
    if instance.is_ephemeral:
        verdicts = [Verdict(WARN, "instance", f"{where}: ephemeral storage ({storage}) — runs are not kept")]
    else:
        verdicts = [Verdict(OK, "instance", f"{where}; storage {storage} / {run_storage}")]

    wanted = pool_limits(CONCURRENCY_LIMITS)
    actual = {}
    for pool in wanted:
        info = instance.event_log_storage.get_concurrency_info(pool)
        actual[pool] = None if info.using_default_limit else info.slot_count
    shown = ", ".join(f"{pool}={actual[pool] if actual[pool] is not None else 'default'}" for pool in wanted)
    wrong = [pool for pool in wanted if actual[pool] != wanted[pool]]
    pool_config = instance.get_concurrency_config().pool_config
    granularity = pool_config.pool_granularity.value if pool_config.pool_granularity else "default"
    extra = f" (granularity {granularity}, default_limit {pool_config.default_pool_limit})"
    if wrong:
        fix = f"{len(wrong)} of {len(wanted)} differ from the registry; run python -m nh_assets.pools apply"
        verdicts.append(Verdict(WARN, "pools", f"{shown}{extra} — {fix}"))
    else:
        verdicts.append(Verdict(OK, "pools", shown + extra))

    queue = instance.get_concurrency_config().run_queue_config
    coordinator = type(instance.run_coordinator).__name__
    if queue is None:
        verdicts.append(Verdict(WARN, "run_queue", f"{coordinator}: runs are not queued, so run limits do not apply"))
    else:
        tags = ", ".join(str(limit.get("key")) for limit in queue.tag_concurrency_limits) or "none"
        detail = f"{coordinator}: at most {queue.max_concurrent_runs} runs; tag limits on {tags}"
        verdicts.append(Verdict(OK, "run_queue", detail))
    return verdicts


def run_checks(
    settings: Settings,
    *,
    env: Mapping[str, str],
    instance: dg.DagsterInstance | None,
    token_present: bool,
    timeout_s: float = VERSION_TIMEOUT_S,
) -> list[Verdict]:
    return [
        check_gemini_cli(settings.gemini_cli, env, timeout_s),
        check_gemini_auth(env, demo=settings.demo),
        check_wrangler(settings.wrangler_cli, env, token_present=token_present, timeout_s=timeout_s),
        check_cloudflare_token(token_present),
        check_data_root(settings.data_root),
        check_rate_limit(
            store_for(
                settings.rate_limit_backend,
                sqlite_path=settings.rate_limit_db,
                postgres_url=env.get(settings.rate_limit_url_env, "") if settings.rate_limit_url_env else "",
            ),
            settings.rate_per_minute,
            settings.rate_per_day,
        ),
        check_day_fits(
            registry_path_from_env(env), settings,
            env.get(settings.rate_limit_url_env, "") if settings.rate_limit_url_env else "",
        ),
        *check_instance(instance, env),
    ]


def markdown_table(verdicts: Sequence[Verdict]) -> str:
    lines = ["| verdict | check | detail |", "|---|---|---|"]
    lines += [f"| {v.level.value} | {v.check} | {v.detail.replace('|', '/')} |" for v in verdicts]
    return "\n".join(lines)


def build_preflight_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(name="run_preflight_checks", out=dg.Out(dg.Nothing))
    def preflight_op(context: dg.OpExecutionContext, wrangler: WranglerResource) -> None:
        # A diagnostic of the environment the runs execute in: it reads that environment's names.
        verdicts = run_checks(settings, env=os.environ, instance=context.instance, token_present=wrangler.has_token)
        log = {OK: context.log.info, WARN: context.log.warning, FAIL: context.log.error}
        for verdict in verdicts:
            log[verdict.level](verdict.line())
        failed = [v for v in verdicts if v.level is FAIL]
        metadata = {
            "verdicts": dg.MetadataValue.md(markdown_table(verdicts)),
            "nh.fail": dg.MetadataValue.int(len(failed)),
            "nh.warn": dg.MetadataValue.int(sum(v.level is WARN for v in verdicts)),
        }
        if failed:
            raise dg.Failure(
                description=f"preflight: {len(failed)} FAIL — {failed[0].check}: {failed[0].detail}",
                metadata=metadata,
                allow_retries=False,
            )
        context.add_output_metadata(metadata)

    @dg.job(
        name="preflight",
        description=(
            "Checks the Gemini CLI and auth, wrangler, the data root, the rate limit and the instance (old `nh diag`)."
        ),
        executor_def=dg.in_process_executor,
        tags={"nh/maintenance": "preflight"},
    )
    def preflight() -> None:
        preflight_op()

    return preflight


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nh_assets.operations.preflight", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    env = dict(os.environ)
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(Verdict(FAIL, "settings", str(exc)).line())
        return 1
    instance = None
    if env.get("DAGSTER_HOME"):
        try:
            instance = dg.DagsterInstance.get()
        except Exception as exc:  # noqa: BLE001 - one verdict line, not a traceback
            reason = _redact(f"{type(exc).__name__}: {exc}", env).splitlines()[0][:300]
            print(Verdict(FAIL, "instance", f"cannot open the instance at $DAGSTER_HOME ({reason})").line())
            return 1
    try:
        verdicts = run_checks(settings, env=env, instance=instance, token_present=bool(env.get(TOKEN_ENV, "").strip()))
    finally:
        if instance is not None:
            instance.dispose()
    for verdict in verdicts:
        print(verdict.line())
    failed = sum(v.level is FAIL for v in verdicts)
    warned = sum(v.level is WARN for v in verdicts)
    print(f"preflight: {failed} FAIL, {warned} WARN, {len(verdicts) - failed - warned} OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
