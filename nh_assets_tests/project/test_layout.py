"""The house rules of the package layout, checked on the source so a change cannot quietly break them.

One concept per module, short enough to read (450 lines); no import cycle between the package's
modules, type-only imports included; the Gemini resource knows nothing of the fake API; and no
module outside ``formats/`` decides by an output format's name (the formats table does).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nh_assets.settings import REPO_ROOT

pytestmark = pytest.mark.fast

PACKAGE = REPO_ROOT / "nh_assets"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules this one imports anywhere in its body (TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in names:
            # The longest module name the import reaches: ``from a.b import c`` is a.b.c if c is a module.
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                return stack[stack.index(child):] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_every_module_is_short_enough_to_read():
    long = {str(p.relative_to(REPO_ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_import_cycle_between_the_packages_modules():
    modules = _modules()
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of the design.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (modules[name].name == "__init__.py" and t.startswith(name + "."))}
    assert _cycle(graph) is None


def test_the_gemini_resource_imports_nothing_of_the_fake_api():
    modules = _modules()
    imported = _imports(modules["nh_assets.gemini.resource"], "nh_assets.gemini.resource", modules)
    assert not {m for m in imported if m.startswith("nh_assets.demo")}


def test_no_module_outside_formats_decides_by_a_format_name():
    by_name = re.compile(r"output_format\s*(==|!=|in)\s*[\"'(\[]")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in PACKAGE.rglob("*.py")
        if "formats" not in path.parts and by_name.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
