"""Faults around the files the pipeline writes, with real processes: a step killed with SIGKILL
mid-write, a full data root (a real 1 MiB tmpfs), retention killed mid-run, and file modes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import yaml

from nh_assets.artifacts import ArtifactWriteError, write_atomic
from nh_assets.operations.retention import FILES_REMOVED_KEY
from nh_assets.registry import load_registry
from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.fakes import pipeline_env

pytestmark = pytest.mark.dagster

DAGSTER = str(Path(sys.executable).parent / "dagster")
INJECTION = str(Path(__file__).resolve().parents[1] / "support" / "fault_injection")
ASSET, DAY = "ai_ecosystem_watch", "2026-11-20"
REGISTRY = load_registry(REPO_ROOT / "registry" / "prompts.tsv")


def _env(base: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **pipeline_env(base, PYTHONPATH=INJECTION, PYTHONWARNINGS="ignore", **extra)}


def _dagster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, *args], env=env, cwd=env["DAGSTER_HOME"], capture_output=True, text=True, timeout=300
    )


def _materialize(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _dagster(env, "asset", "materialize", "-m", "nh_assets", "--select", ASSET, "--partition", DAY)


def _artifact(env: dict[str, str]) -> Path:
    return Path(env["NH_DATA_ROOT"]) / REGISTRY.by_id(ASSET).output_path(DAY)


def _temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.partial"))


def test_a_step_killed_mid_write_keeps_the_previous_artifact_and_the_next_run_leaves_no_temp(tmp_path):
    # A step process of its own: the kill takes the step and its run fails (and frees its pool slot).
    # With the default executor the same kill takes the run worker, all its steps with it; run
    # monitoring fails that run and frees its slots (test_faults_daemon), and nothing here changes.
    env = _env(tmp_path, NH_EXECUTOR="multiprocess")
    artifact = _artifact(env)
    artifact.parent.mkdir(parents=True)
    artifact.write_text("the previous good artifact\n")

    killed = _materialize({**env, "NH_TEST_KILL_MID_WRITE": artifact.name})
    assert killed.returncode != 0
    assert artifact.read_text() == "the previous good artifact\n"
    (leftover,) = _temps(artifact)  # the half-written temp file of the killed step
    assert 0 < leftover.stat().st_size

    again = _materialize(env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert artifact.read_text().startswith("---\n") and _temps(artifact) == []


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"mount -t tmpfs failed (this test needs root): {mounted.stderr.decode()[-500:]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(directory: Path) -> None:
    """Write until the file system refuses, in big then single-byte chunks."""
    for name, chunk in (("filler", b"\0" * 65536), ("filler-tail", b"\0")):
        with contextlib.suppress(OSError), open(directory / name, "wb", buffering=0) as handle:
            while True:
                handle.write(chunk)


def test_a_full_data_root_fails_in_one_line_and_leaves_nothing_partial(tmp_path):
    env = _env(tmp_path)
    with _tmpfs(Path(env["NH_DATA_ROOT"]), "1m") as root:
        first = _materialize(env)
        assert first.returncode == 0, first.stderr[-3000:]
        artifact = _artifact(env)
        before = artifact.read_bytes()
        _fill(root)
        full = _materialize(env)
        assert full.returncode != 0
        output = full.stdout + full.stderr
        assert f"cannot write {artifact}: No space left on device — free space under NH_DATA_ROOT" in output
        assert artifact.read_bytes() == before and _temps(artifact) == []


def test_retention_killed_mid_run_then_run_again_loses_nothing(tmp_path):
    today = datetime.now(timezone.utc).date()
    expired = [today - timedelta(days=d) for d in (10, 11, 12)]
    kept = today - timedelta(days=2)
    env = _env(tmp_path, NH_PARTITION_START=(today - timedelta(days=30)).isoformat())
    root = Path(env["NH_DATA_ROOT"])
    prompts = ["ai_ecosystem_watch", "daily_aggregator"]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for day in [*expired, kept]:
            for prompt_id in prompts:
                path = root / REGISTRY.by_id(prompt_id).output_path(day.isoformat())
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{prompt_id} {day}\n")
                instance.report_runless_asset_event(dg.AssetMaterialization(prompt_id, partition=day.isoformat()))
    config = tmp_path / "retention.yaml"
    config.write_text(yaml.safe_dump({"ops": {"remove_expired_artifacts": {"config": {"keep_days": 7, "dry_run": False}}}}))
    job = ("job", "execute", "-m", "nh_assets", "-j", "retention_cleanup", "-c", str(config))

    killed = _dagster({**env, "NH_TEST_KILL_AT_UNLINK": "4"}, *job)  # after 3 of the 6 files
    assert killed.returncode == -9
    remaining = [p for p in root.rglob("*") if p.is_file()]
    assert 2 * len(prompts) < len(remaining) < 4 * len(prompts)

    again = _dagster(env, *job)
    assert again.returncode == 0, again.stderr[-3000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        for prompt_id in prompts:
            key = dg.AssetKey(prompt_id)
            # Every materialization of every day is still there; the kept day is untouched;
            assert instance.get_materialized_partitions(key) == {d.isoformat() for d in [*expired, kept]}
            assert (root / REGISTRY.by_id(prompt_id).output_path(kept.isoformat())).exists()
            # each expired day's file is gone and reported exactly once, whichever run removed it.
            reports = [
                r.partition_key
                for r in instance.fetch_observations(key, limit=100).records
                if FILES_REMOVED_KEY in r.asset_observation.metadata
            ]
            assert sorted(reports) == sorted(d.isoformat() for d in expired)
            for day in expired:
                assert not (root / REGISTRY.by_id(prompt_id).output_path(day.isoformat())).exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_artifacts_are_created_with_the_umasks_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        written = write_atomic(tmp_path / "a" / "artifact.md", b"text")
    finally:
        os.umask(old)
    assert written.path.stat().st_mode & 0o777 == mode and written.path.read_bytes() == b"text"


def test_a_temp_file_a_live_writer_holds_is_never_removed(tmp_path):
    target = tmp_path / "artifact.md"
    held = tmp_path / ".artifact.md.live.partial"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys; f=open(sys.argv[1],'w'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); sys.stdin.readline()", str(held)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        abandoned = tmp_path / ".artifact.md.dead.partial"
        abandoned.write_text("half")
        write_atomic(target, b"new")
        assert held.exists() and not abandoned.exists() and target.read_bytes() == b"new"
    finally:
        holder.communicate("\n", timeout=30)


def test_an_unwritable_destination_is_one_line_with_the_fix(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ArtifactWriteError) as caught:
        write_atomic(tmp_path / "file" / "artifact.md", b"x")
    assert "\n" not in caught.value.description and "NH_DATA_ROOT" in caught.value.description
