"""The code location as Dagster's own CLI loads it: valid registry, bad registry, bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nh_assets.definitions import build_definitions
from nh_assets.pools import pool_name
from nh_assets_tests.support.registry_order import ids

DAGSTER = str(Path(sys.executable).parent / "dagster")


def _validate(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "nh_assets"],
        env=env, capture_output=True, text=True, timeout=180,
    )


@pytest.mark.dagster
def test_definitions_validate_passes(settings_env):
    result = _validate(settings_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.dagster
def test_bad_registry_fails_loading_with_the_registry_messages(settings_env, tmp_path):
    bad = tmp_path / "prompts.tsv"
    source = (Path(__file__).resolve().parents[1] / "registry" / "prompts.tsv").read_text()
    bad.write_text(source.replace("\tmedium\t", "\tturbo\t", 1))
    result = _validate({**settings_env, "NH_REGISTRY": str(bad)})
    assert result.returncode != 0
    assert "concurrency_class" in result.stdout + result.stderr and "turbo" in result.stdout + result.stderr


@pytest.mark.dagster
def test_bad_setting_names_the_variable(settings_env):
    result = _validate({**settings_env, "NH_RATE_PER_MINUTE": "fast"})
    assert result.returncode != 0
    assert "NH_RATE_PER_MINUTE" in result.stdout + result.stderr


@pytest.mark.fast
def test_assets_are_grouped_by_wave_with_pools_and_code_versions(settings, registry):
    graph = build_definitions(settings, registry).resolve_asset_graph()
    nodes = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert set(ids(registry)) <= set(nodes)
    assert set(nodes) - set(ids(registry)) == {"site", "site_deployment"}
    for spec in registry.prompts:
        node = nodes[spec.prompt_id]
        assert node.group_name == spec.wave
        assert node.code_version and len(node.code_version) == 16
        assert node.pools == ({pool_name(spec.concurrency_class)} if spec.uses_llm else set())
        assert {p.to_user_string() for p in node.parent_keys} == {d.prompt_id for d in spec.depends_on}


@pytest.mark.fast
def test_changing_a_prompt_changes_only_its_code_version(settings, registry):
    from dataclasses import replace

    before = build_definitions(settings, registry).resolve_asset_graph()
    spec = registry.by_id("concept_synthesizer")
    edited = replace(
        registry,
        prompts=tuple(p.model_copy(update={"prompt": p.prompt + " Be brief."}) if p is spec else p for p in registry.prompts),
    )
    after = build_definitions(settings, edited).resolve_asset_graph()
    changed = {
        k.to_user_string() for k in before.get_all_asset_keys() if before.get(k).code_version != after.get(k).code_version
    }
    assert changed == {"concept_synthesizer"}


@pytest.mark.fast
def test_each_run_keeps_to_the_pool_limits_and_the_process_cap_by_class_tag(settings, registry):
    from nh_assets.definitions import DAILY_JOB_NAME
    from nh_assets.pools import CLASS_TAG, run_tag_limits
    from nh_assets.registry import CONCURRENCY_LIMITS

    limits = run_tag_limits(settings.max_gemini_processes)
    per_class = {(limit["value"], limit["limit"]) for limit in limits if "value" in limit}
    assert per_class == set(CONCURRENCY_LIMITS.items())
    assert [limit["limit"] for limit in limits if "value" not in limit] == [settings.max_gemini_processes]
    assert {limit["key"] for limit in limits} == {CLASS_TAG}
    job = build_definitions(settings, registry).resolve_job_def(DAILY_JOB_NAME)
    for spec in registry.prompts:
        tags = job.graph.node_named(spec.prompt_id).definition.tags
        assert tags.get(CLASS_TAG) == (spec.concurrency_class if spec.uses_llm else None), spec.prompt_id
