"""The README and docs/ stay true to the repository: every link and anchor resolves, and the
configuration reference is the one the settings' declaration generates.

Anchors follow GitHub's heading slugs (lower case, punctuation dropped, spaces to hyphens, a
repeated heading gets ``-1``, ``-2`` …), so a link that works here works on GitHub. http(s) links
are not fetched: the tests have no network.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nh_assets.cli import config_reference
from nh_assets.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.fast

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_LINE_ANCHOR = re.compile(r"L\d+(-L\d+)?")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """Lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        if match := _HEADING.match(line):
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        line = _CODE_SPAN.sub(lambda m: "`" + "x" * len(m.group(2)) + "`" if "](" in m.group(2) else m.group(0), line)
        found += [(number, m.group(1)) for m in _INLINE_LINK.finditer(line)]
        if match := _REFERENCE.match(line):
            found.append((number, match.group(1)))
    return found


def link_problems(page: Path, root: Path) -> list[str]:
    """One line per link of ``page`` that does not resolve inside ``root``."""
    problems = []
    for number, target in links(page):
        where = f"{page.relative_to(root)}:{number}: {target}"
        if re.match(r"https?://", target):
            continue
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("/", "//")):
            problems.append(f"{where}: points outside the repository — link a file by its relative path")
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no such file — fix the path, relative to {page.parent.relative_to(root) or '.'}")
        elif anchor and resolved.suffix == ".md":
            if anchor not in anchors(resolved):
                problems.append(f"{where}: no heading with that anchor in {resolved.relative_to(root.resolve())}")
        elif anchor and not (resolved.is_file() and _LINE_ANCHOR.fullmatch(anchor)):
            problems.append(f"{where}: an anchor into a file that is not markdown must be a line (#L12)")
    return problems


def _pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def test_the_docs_have_a_page_per_concern_linked_from_the_readme():
    readme = REPO_ROOT / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve() for _, t in links(readme) if t.startswith("docs/")}
    pages = set((REPO_ROOT / "docs").glob("*.md"))
    assert {p.name for p in pages} >= {
        "configuration.md", "operating.md", "gemini.md", "deployment.md", "reliability.md",
        "performance.md", "migrating.md", "development.md",
    }
    assert {p.resolve() for p in pages} <= linked, "a docs page the README does not link"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 170


def test_every_link_and_anchor_in_the_readme_and_docs_resolves():
    problems = [problem for page in _pages(REPO_ROOT) for problem in link_problems(page, REPO_ROOT)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_link_check_finds_each_kind_of_broken_link(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "src.py").write_text("x = 1\n")
    (tmp_path / "docs" / "a.md").write_text(
        "# Page A\n\n## Second `part`: here\n\n## Second part here\n\n```\n[in code](missing.md)\n```\n"
    )
    (tmp_path / "README.md").write_text(
        "# R\n\n"
        "[ok](docs/a.md#second-part-here) [dup](docs/a.md#second-part-here-1) [self](#r) [line](src.py#L1)\n"
        "[web](https://example.com/x) `[code span](nowhere.md)`\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#third) [up](../outside.md) [abs](/etc/passwd)\n"
        "[file](file:///etc/passwd) [py anchor](src.py#main)\n"
        "[ref]: docs/missing.md\n"
    )
    problems = link_problems(tmp_path / "README.md", tmp_path)
    assert [p.split(": ")[1] for p in problems] == [
        "docs/b.md", "docs/a.md#third", "../outside.md", "/etc/passwd", "file:///etc/passwd", "src.py#main",
        "docs/missing.md",
    ], problems


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("The Gemini CLI: install and authenticate", "the-gemini-cli-install-and-authenticate"),
        ("The `nh` command", "the-nh-command"),
        ("A warm CLI (ACP)", "a-warm-cli-acp"),
        ("1. Instance storage on PostgreSQL", "1-instance-storage-on-postgresql"),
        ("Concurrency, the rate limit and backfills", "concurrency-the-rate-limit-and-backfills"),
        ("From `nh` to Dagster", "from-nh-to-dagster"),
    ],
)
def test_anchors_follow_githubs_slugs(heading, slug):
    assert github_slug(heading) == slug


def test_the_configuration_page_is_the_one_the_settings_generate():
    page = config_reference.PAGE.read_text(encoding="utf-8")
    assert config_reference.render(page) == page, (
        f"docs/configuration.md is out of date with nh_assets/settings.py — run {config_reference.REGENERATE}"
    )


def test_the_generated_table_has_every_setting_with_its_default_and_secrecy():
    rows = {
        line.split("|")[1].strip(" `"): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in config_reference.table().splitlines()[2:]
    }
    for field in Settings.model_fields.values():
        assert str(field.validation_alias) in rows
    assert rows["NH_RATE_PER_MINUTE"][:2] == ["`rate_per_minute`", "`50`"]
    assert rows["NH_POSTGRES_URL"][3] == "yes"
    assert rows["NH_GEMINI_CLI"][3] == "no"
    assert rows["GEMINI_API_KEY"][::3] == ["—", "yes"]
    assert rows["NH_PAGEFIND_CLI"][1] == "`node_modules/.bin/pagefind`"  # never this clone's absolute path


def test_every_variable_the_code_and_scripts_read_is_documented():
    """As sqlite-utils fails a test on an undocumented command: a variable read anywhere in the
    package or the scripts has a row in the generated table (and so in ``nh config``)."""
    read = set()
    for path in [*(REPO_ROOT / "nh_assets").rglob("*.py"), *(REPO_ROOT / "scripts").glob("*.sh")]:
        read |= set(re.findall(r"\bNH_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"^\| `([A-Z_][A-Z0-9_]*)` \|", config_reference.table(), flags=re.M))
    assert "NH_RATE_PER_MINUTE" in read
    assert read <= documented, f"read but not declared: {sorted(read - documented)} — declare them in Settings " \
        "or nh_assets/cli/config.py, then run " + config_reference.REGENERATE


def test_check_fails_on_a_stale_page_naming_the_command_and_writes_the_fix(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    current = config_reference.render(config_reference.PAGE.read_text(encoding="utf-8"))
    without_a_row = re.sub(r"^\| `NH_RATE_PER_DAY` .*\n", "", current, flags=re.M)
    assert without_a_row != current
    stale.write_text(without_a_row, encoding="utf-8")
    assert config_reference.main(["--check"], page=stale) == 1
    assert config_reference.REGENERATE in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == without_a_row  # --check changes nothing
    assert config_reference.main([], page=stale) == 0
    assert stale.read_text(encoding="utf-8") == current
    assert config_reference.main(["--check"], page=stale) == 0


def test_a_page_without_the_markers_is_refused_in_one_line(tmp_path, capsys):
    page = tmp_path / "configuration.md"
    page.write_text("# Configuration\n\nno table here\n", encoding="utf-8")
    assert config_reference.main([], page=page) == 1
    err = capsys.readouterr().err
    assert "lacks the markers" in err and len(err.strip().splitlines()) == 1
    assert page.read_text(encoding="utf-8") == "# Configuration\n\nno table here\n"
