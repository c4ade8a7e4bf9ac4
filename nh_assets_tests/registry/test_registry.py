"""Tests of the prompt registry: the shipped TSV, every refusal, the CLI contract.

Each bad registry under support/registry_cases/ declares what it must produce in
``# expect LINE:COLUMN: message-prefix`` comment lines, so adding a case is
adding a file; the test demands exactly those problems and no others, which
also proves that problems are collected rather than stopping at the first.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from pydantic import ValidationError

from nh_assets.registry import (
    CONCURRENCY_LIMITS,
    WAVES,
    Dependency,
    PromptSpec,
    Registry,
    RegistryError,
    load_registry,
)
from nh_assets.registry.__main__ import EXIT_INVALID
from nh_assets.prompts.rendering import render_prompt
from nh_assets.settings import DEFAULT_REGISTRY_PATH, REPO_ROOT, registry_path_from_env
from nh_assets_tests.support.registry_order import ids, topological_order, waves
from nh_assets.formats.vocabulary import REPORT_SECTIONS, TAG_CATEGORIES

CASES_DIR = Path(__file__).resolve().parents[1] / "support" / "registry_cases"
CASES = sorted(CASES_DIR.glob("*.tsv"))
PROBLEM_LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<column>[a-z_]+): (?P<message>.+)$")

RESEARCH_MARKET = (
    "ai_ecosystem_watch",
    "tech_regulation_pulse",
    "emergent_open_source",
    "hardware_compute",
    "ethics_alignment",
    "model_comparison",
    "corporate_strategy",
    "startup_radar",
    "developer_tools",
    "prompt_engineering",
)
HEADER = (
    "prompt_id\ttitle\twave\tcategory\tmodel\ttools\ttemperature\ttoken_budget\ttimeout_sec\t"
    "max_retries\tconcurrency_class\texpected_outputs\toutput_format\tdepends_on\tprompt\tnotes"
)


def _row(prompt_id: str, *, depends_on: str = "", prompt: str = "Summarise. Use ## headings.") -> str:
    return (
        f"{prompt_id}\tTitle\tsearch\tResearch\tgemini-2.5-flash\tgoogle_web_search\t0.3\t8000\t"
        f"300\t3\tlow\toutputs/daily/{{date}}/{prompt_id}.md\tmarkdown\t{depends_on}\t{prompt}\t"
    )


def _write(tmp_path: Path, *lines: str, name: str = "prompts.tsv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _expectations(case: Path) -> list[str]:
    return [
        line.removeprefix("# expect ").strip()
        for line in case.read_text(encoding="utf-8").splitlines()
        if line.startswith("# expect ")
    ]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NH_REGISTRY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "nh_assets.registry", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def shipped() -> Registry:
    return load_registry(DEFAULT_REGISTRY_PATH)


@pytest.mark.fast
def test_shipped_registry_has_the_23_prompts_in_wave_order(shipped: Registry) -> None:
    assert len(shipped.prompts) == 23
    assert len(set(ids(shipped))) == 23
    wave_index = [WAVES.index(spec.wave) for spec in shipped.prompts]
    assert wave_index == sorted(wave_index)
    by_wave = waves(shipped)
    assert list(by_wave) == list(WAVES)
    assert [len(by_wave[w]) for w in WAVES] == [18, 1, 2, 1, 1]


@pytest.mark.fast
def test_shipped_registry_is_acyclic_and_ordered(shipped: Registry) -> None:
    order = [spec.prompt_id for spec in topological_order(shipped)]
    assert sorted(order) == sorted(ids(shipped))
    for spec in shipped.prompts:
        for dep in spec.depends_on:
            if dep.prompt_id != spec.prompt_id:
                assert order.index(dep.prompt_id) < order.index(spec.prompt_id), (spec, dep)


@pytest.mark.fast
def test_shipped_dependencies_follow_the_design(shipped: Registry) -> None:
    def deps(prompt_id: str) -> set[str]:
        return {str(dep).removesuffix("?") for dep in shipped.by_id(prompt_id).depends_on}

    def optional(prompt_id: str) -> set[str]:
        return {dep.prompt_id for dep in shipped.by_id(prompt_id).depends_on if dep.optional}

    assert Dependency("concept_synthesizer", -1, -1) in shipped.by_id("novelty_filter").depends_on
    assert "concept_synthesizer@-1" in deps("novelty_filter")
    assert deps("continuity_builder") == {"daily_aggregator@-7..-1"}
    assert deps("meta_project_explorer") == {"daily_aggregator@-3..-1", "continuity_builder@-1"}
    assert deps("concept_synthesizer") == set(RESEARCH_MARKET)
    assert deps("cross_domain_insight") == set(RESEARCH_MARKET)
    aggregator = deps("daily_aggregator")
    assert set(RESEARCH_MARKET) < aggregator
    assert not {"continuity_builder", "meta_project_explorer"} & aggregator
    assert deps("site_payload_exporter") == {"daily_aggregator", "tag_extractor"}
    # Every same-day input of the report is optional: a failed prompt degrades the day, never cancels it.
    assert optional("daily_aggregator") == aggregator
    assert optional("concept_synthesizer") == set(RESEARCH_MARKET)
    for prompt_id in ("tag_extractor", "dashboard_renderer", "site_payload_exporter"):
        assert optional(prompt_id) == set(), prompt_id  # built on the report: it must exist
    for prompt_id in RESEARCH_MARKET:
        spec = shipped.by_id(prompt_id)
        assert spec.depends_on == ()
        assert spec.tools == ("google_web_search",)
        assert 0.3 <= spec.temperature <= 0.7
        limits = (spec.model, spec.token_budget, spec.timeout_sec, spec.max_retries)
        assert limits == ("gemini-2.5-flash", 8000, 300, 3)


@pytest.mark.fast
def test_shipped_prompts_match_the_report_schema(shipped: Registry) -> None:
    report = shipped.by_id("daily_aggregator")
    assert report.required_sections == REPORT_SECTIONS
    # What the model is told: the registry's sections, in order, after the row's prompt.
    report_prompt = render_prompt(report, "2026-11-20", []).text
    positions = [report_prompt.index(f"- {section}\n") for section in REPORT_SECTIONS]
    assert positions == sorted(positions)
    tag_prompt = shipped.by_id("tag_extractor").prompt
    assert all(category in tag_prompt for category in TAG_CATEGORIES)
    for spec in shipped.prompts:
        if spec.output_format == "markdown":
            assert "##" in spec.prompt, spec.prompt_id
        assert "file" not in spec.prompt.lower(), spec.prompt_id


@pytest.mark.fast
def test_shipped_builtin_row_and_outputs(shipped: Registry) -> None:
    exporter = shipped.by_id("site_payload_exporter")
    assert (exporter.model, exporter.output_format) == ("builtin", "site_payload")
    assert not exporter.uses_llm
    assert exporter.output_path("2025-03-04") == PurePosixPath("publishing/2025-03-04.json")
    assert shipped.by_id("daily_aggregator").output_path("2025-03-04") == PurePosixPath(
        "reports/daily_report_2025-03-04.md"
    )
    paths = [spec.output_path("2025-03-04") for spec in shipped.prompts]
    assert len(set(paths)) == len(paths)
    assert all(not path.is_absolute() and ".." not in path.parts for path in paths)
    for spec in shipped.prompts:
        assert spec.concurrency_limit == CONCURRENCY_LIMITS[spec.concurrency_class]


@pytest.mark.fast
@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_registry_is_refused_with_located_problems(case: Path) -> None:
    expected = _expectations(case)
    assert expected, f"{case.name} declares no '# expect' line"
    with pytest.raises(RegistryError) as caught:
        load_registry(case)
    problems = caught.value.problems
    assert len(problems) == len(expected), "\n".join(problems)
    for problem in problems:
        match = PROBLEM_LINE.match(problem)
        assert match and match["path"] == str(case), problem
        assert " — " in match["message"], f"no fix hint: {problem}"
    for expectation in expected:
        located = f"{case}:{expectation}"
        assert any(p.startswith(located) for p in problems), (located, problems)
    assert str(caught.value).splitlines()[0] == f"registry {case} has {len(expected)} problem(s):"


@pytest.mark.dagster
@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_cli_exits_10_on_bad_registry(case: Path) -> None:
    result = _run_cli("validate", str(case))
    assert result.returncode == EXIT_INVALID, result.stderr
    assert "Traceback" not in result.stderr
    for expectation in _expectations(case):
        assert f"{case}:{expectation}" in result.stderr
    assert "OK:" not in result.stdout


@pytest.mark.dagster
def test_cli_accepts_shipped_registry_with_table() -> None:
    result = _run_cli("validate", str(DEFAULT_REGISTRY_PATH))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "wave", "class", "model", "depends_on", "output"]
    assert any(line.startswith("novelty_filter ") and "concept_synthesizer@-1" in line for line in lines)
    assert lines[-1] == "OK: 23 prompts"


@pytest.mark.dagster
def test_cli_defaults_to_the_shipped_registry() -> None:
    result = _run_cli("validate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "OK: 23 prompts"


@pytest.mark.dagster
@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"]])
def test_cli_help(args: list[str]) -> None:
    result = _run_cli(*args)
    assert result.returncode == 0
    assert "usage:" in result.stdout and "validate" in result.stdout


@pytest.mark.dagster
@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("missing", "file not found"),
        ("directory", "is a directory"),
        ("not_utf8", ":2: byte 0xff is not valid UTF-8"),
        ("comments_only", ":1:header: no header row"),
    ],
)
def test_unreadable_registry_is_one_line_with_a_fix(tmp_path: Path, kind: str, fragment: str) -> None:
    path = tmp_path / "prompts.tsv"
    if kind == "directory":
        path.mkdir()
    elif kind == "not_utf8":
        path.write_bytes(HEADER.encode() + b"\n\xff\xfe broken\n")
    elif kind == "comments_only":
        path.write_text("# nothing here yet\n\n", encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert len(caught.value.problems) == 1
    assert fragment in caught.value.problems[0]
    assert " — " in caught.value.problems[0]
    result = _run_cli("validate", str(path))
    assert result.returncode == EXIT_INVALID
    assert "Traceback" not in result.stderr and fragment in result.stderr


@pytest.mark.fast
def test_line_numbers_are_physical_and_layout_is_flexible(tmp_path: Path) -> None:
    columns = HEADER.split("\t")
    reordered = ["prompt", *reversed(columns[:-2]), "notes", "extra"]

    def line(prompt_id: str, temperature: str) -> str:
        values = dict(zip(columns, _row(prompt_id).split("\t")))
        values.update(temperature=temperature, extra="ignored")
        return "\t".join(values[c] for c in reordered)

    lines = ["# comment", "", "\t".join(reordered), "", "  # indented comment"]
    path = _write(tmp_path, *lines, line("alpha", "0.5"), "", line("beta", "9"))
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert caught.value.problems == [
        f"{path}:8:temperature: 9.0 is out of range 0.0–2.0 — use a value between 0.0 and 2.0"
    ]
    path.write_text(path.read_text().replace("\t9\t", "\t1\t").replace("\n", "\r\n"))
    assert load_registry(path).by_id("beta").temperature == 1.0


@pytest.mark.fast
def test_prompt_escapes_become_real_characters(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER, _row("alpha", prompt=r"First line.\nSecond\tline; C:\\dir and \q."))
    assert load_registry(path).by_id("alpha").prompt == "First line.\nSecond\tline; C:\\dir and \\q."


@pytest.mark.fast
def test_self_dependency_on_earlier_days_is_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER, _row("alpha", depends_on="alpha@-1, beta"), _row("beta"))
    registry = load_registry(path)
    assert [spec.prompt_id for spec in topological_order(registry)] == ["beta", "alpha"]
    assert [str(dep) for dep in registry.by_id("alpha").depends_on] == ["alpha@-1", "beta"]


@pytest.mark.fast
def test_problems_from_several_rows_are_all_reported(tmp_path: Path) -> None:
    rows = [_row("alpha", depends_on="ghost"), _row("beta").replace("0.3", "x"), _row("alpha")]
    path = _write(tmp_path, HEADER, *rows)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    located = [problem.split(": ", 1)[0].removeprefix(f"{path}:") for problem in caught.value.problems]
    assert located == ["2:depends_on", "3:temperature", "4:prompt_id", "4:expected_outputs"]


@pytest.mark.fast
@pytest.mark.parametrize(
    ("text", "parsed", "canonical"),
    [
        ("alpha", Dependency("alpha", 0, 0), "alpha"),
        ("alpha@0", Dependency("alpha", 0, 0), "alpha"),
        ("alpha@-1", Dependency("alpha", -1, -1), "alpha@-1"),
        ("alpha@-7..-1", Dependency("alpha", -7, -1), "alpha@-7..-1"),
        ("alpha@-3..0", Dependency("alpha", -3, 0), "alpha@-3..0"),
        ("alpha@-2..-2", Dependency("alpha", -2, -2), "alpha@-2"),
        (" alpha@-1 ", Dependency("alpha", -1, -1), "alpha@-1"),
        ("alpha?", Dependency("alpha", 0, 0, optional=True), "alpha?"),
        ("alpha@0?", Dependency("alpha", 0, 0, optional=True), "alpha?"),
    ],
)
def test_dependency_syntax_round_trips(text: str, parsed: Dependency, canonical: str) -> None:
    dep = Dependency.parse(text)
    assert dep == parsed
    assert str(dep) == canonical
    assert Dependency.parse(str(dep)) == dep
    assert dep.is_same_day == (dep.start_offset == dep.end_offset == 0)


@pytest.mark.fast
@pytest.mark.parametrize(
    "text", ["", "alpha@", "alpha@1", "alpha@-1..-3", "alpha@-1..1", "al-pha", "alpha@-x", "def", "alpha@-1?", "alpha??"]
)
def test_bad_dependency_syntax_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=" — "):
        Dependency.parse(text)


@pytest.mark.fast
def test_prompt_spec_helpers_and_immutability(shipped: Registry) -> None:
    spec = shipped.by_id("ai_ecosystem_watch")
    assert spec.uses_llm and spec.approval_mode == "default"
    yolo = spec.model_copy(update={"tools": ("google_web_search", "yolo")})
    assert yolo.approval_mode == "yolo"
    with pytest.raises(ValidationError):
        spec.temperature = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        spec.output_path("2025-3-4")
    assert PromptSpec.model_validate(spec.model_dump()) == spec
    with pytest.raises(KeyError, match="nope"):
        shipped.by_id("nope")


@pytest.mark.fast
def test_registry_path_comes_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NH_REGISTRY", raising=False)
    assert registry_path_from_env() == DEFAULT_REGISTRY_PATH == REPO_ROOT / "registry" / "prompts.tsv"
    path = _write(tmp_path, HEADER, _row("alpha"))
    monkeypatch.setenv("NH_REGISTRY", str(path))
    assert registry_path_from_env() == path
    assert ids(load_registry(registry_path_from_env())) == ("alpha",)
