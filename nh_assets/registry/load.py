"""Reading the prompt registry: the TSV file that declares every asset of the daily pipeline.

Each row of ``registry/prompts.tsv`` becomes one Dagster asset: its prompt text,
model, tools, limits, where it writes its output and which other prompts it
reads. Keeping this in a flat TSV lets an operator add or tune a prompt with a
text editor and review the change as a one-line diff, without touching Python.
Because a typo there would otherwise surface as an obscure Dagster definition
error (or, worse, a silently wrong graph), this module validates the whole file
up front and reports every problem at once as ``PATH:LINE:COLUMN: message``
lines that say what to fix.

File format
    UTF-8, tab-separated, the first non-comment line is the header naming the
    columns (all of ``COLUMNS`` are required, in any order; the columns of
    ``OPTIONAL_HEADER_COLUMNS`` may be left out and then take their defaults;
    extra columns are ignored). Blank lines and lines starting with ``#`` are skipped, but line
    numbers in messages are physical lines so they match the editor. There is
    no quoting: a field is everything between two tabs. In ``prompt`` the
    escapes ``\\n`` (newline), ``\\t`` (tab) and ``\\\\`` (backslash) are decoded.

depends_on syntax
    A comma-separated list, empty for none. Each entry is
    ``prompt_id`` (same day), ``prompt_id@-N`` (the partition N days back;
    ``@0`` is the same day) or ``prompt_id@-A..-B`` (every day from A days back
    to B days back inclusive, A <= B <= 0, e.g. ``daily_aggregator@-7..-1``).
    Dagster refuses any cycle between asset keys whatever the partition
    offsets, so cycle detection ignores offsets. The one exception is a prompt
    reading its own earlier days (``x@-1``): Dagster supports such
    self-dependent assets, so only a same-day self-dependency is an error.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nh_assets.registry.dependencies import CellErrors, Dependency, parse_dependencies, prompt_id_problem
from nh_assets.registry.graph import find_cycles
from nh_assets.registry.spec import WAVES, PromptSpec, Registry, RegistryError, normalize_output_template

COLUMNS: tuple[str, ...] = (
    "prompt_id",
    "title",
    "wave",
    "category",
    "model",
    "tools",
    "temperature",
    "token_budget",
    "timeout_sec",
    "max_retries",
    "concurrency_class",
    "expected_outputs",
    "output_format",
    "depends_on",
    "prompt",
    "notes",
)
# Columns whose cell may be empty; every other cell must hold a value.
OPTIONAL_COLUMNS: frozenset[str] = frozenset(
    {"depends_on", "notes", "required_sections", "blocks_publishing", "thinking_budget", "max_reasks", "fallback_model"}
)
# Columns a registry may leave out of its header altogether (older registries): they take the
# defaults of ``PromptSpec`` — no required sections, checks that do not block publishing, the
# model's own thinking budget, the format's number of re-asks.
OPTIONAL_HEADER_COLUMNS: tuple[str, ...] = (
    "required_sections", "blocks_publishing", "thinking_budget", "max_reasks", "fallback_model",
)
REGISTRY_ENV_VAR = "NH_REGISTRY"

_ESCAPE_RE = re.compile(r"\\([\\nt])")
_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t"}


@dataclass
class _Problem:
    line: int
    column: str
    message: str


@dataclass
class _RowFacts:
    """What the cross-row checks need from a row, even one that failed validation."""

    line: int
    prompt_id: str | None = None
    wave: str | None = None
    template: str | None = None
    depends_on: tuple[Dependency, ...] = ()


def _unescape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(1)], text)


def _pydantic_problems(err: ValidationError, present: set[str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in err.errors(include_url=False):
        column = str(error["loc"][0]) if error["loc"] else "row"
        if error["type"] == "missing":
            if column not in present:
                continue  # already reported once as a missing header column
            message = "is empty — every row needs a value in this column"
        elif error["type"] == "value_error":
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, CellErrors):
                problems.extend((column, message) for message in cause.messages)
                continue
            message = str(cause) if cause is not None else error["msg"]
        else:
            message = error["msg"]
        problems.append((column, message))
    return problems


def _read_text(path: Path, shown: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RegistryError(
            shown,
            [
                f"{shown}: file not found — check the path or set {REGISTRY_ENV_VAR} "
                "to the registry TSV"
            ],
        ) from None
    except IsADirectoryError:
        raise RegistryError(
            shown, [f"{shown}: is a directory — pass the path of the registry .tsv file"]
        ) from None
    except OSError as exc:
        raise RegistryError(
            shown,
            [f"{shown}: cannot read ({exc.strerror or exc}) — check the file's permissions"],
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"byte 0x{data[exc.start]:02x} is not valid UTF-8 — save the file as UTF-8"
        raise RegistryError(shown, [f"{shown}:{line}: {message}"]) from None


def load_registry(path: str | os.PathLike[str]) -> Registry:
    """Read and validate a registry TSV; raises RegistryError listing every problem."""
    file_path = Path(path)
    shown = str(file_path)
    text = _read_text(file_path, shown)
    problems: list[_Problem] = []
    specs: list[PromptSpec] = []
    facts: list[_RowFacts] = []
    header: list[str] | None = None
    header_line = 0

    for line_no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header, header_line = [cell.strip() for cell in cells], line_no
            duplicated = sorted({c for c in header if c and header.count(c) > 1})
            if duplicated:
                message = f"column(s) named twice: {', '.join(duplicated)} — keep one of each"
                problems.append(_Problem(line_no, "header", message))
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                message = (
                    f"missing column(s): {', '.join(missing)} — the first non-comment line "
                    "must name all columns (tab-separated, any order)"
                )
                problems.append(_Problem(line_no, "header", message))
            continue
        if len(cells) != len(header):
            message = (
                f"has {len(cells)} tab-separated fields but the header has {len(header)} — "
                "check for missing or extra tabs (an empty notes cell still needs its tab)"
            )
            problems.append(_Problem(line_no, "row", message))
            continue
        row = {name: cells[i].strip() for i, name in enumerate(header) if name in _KNOWN}
        present = set(row)
        data: dict[str, Any] = {
            name: value for name, value in row.items() if value or name in OPTIONAL_COLUMNS
        }
        if "prompt" in data:
            data["prompt"] = _unescape(data["prompt"])
        data["line"] = line_no
        try:
            spec = PromptSpec(**data)
        except ValidationError as err:
            row_problems = _pydantic_problems(err, present)
            problems.extend(_Problem(line_no, col, msg) for col, msg in row_problems)
            facts.append(_facts_from_raw(line_no, row, {col for col, _ in row_problems}))
        else:
            specs.append(spec)
            row_facts = _RowFacts(
                line_no, spec.prompt_id, spec.wave, spec.expected_outputs, spec.depends_on
            )
            facts.append(row_facts)

    if header is None:
        message = (
            "no header row — the first non-comment line must name the columns: "
            + ", ".join(COLUMNS)
        )
        problems.append(_Problem(1, "header", message))
    elif not facts and not problems:
        message = "no prompts defined — add one row per prompt below the header"
        problems.append(_Problem(header_line, "row", message))
    problems.extend(_cross_row_problems(facts))

    if problems:
        problems.sort(key=lambda p: p.line)  # stable: within a line, detection order
        raise RegistryError(shown, [f"{shown}:{p.line}:{p.column}: {p.message}" for p in problems])
    return Registry(path=file_path, prompts=tuple(specs))



def _facts_from_raw(line_no: int, row: Mapping[str, str], bad: set[str]) -> _RowFacts:
    """Salvage the cross-row facts of an invalid row so its other problems still show."""
    facts = _RowFacts(line_no)
    prompt_id = row.get("prompt_id", "")
    if "prompt_id" not in bad and prompt_id and prompt_id_problem(prompt_id) is None:
        facts.prompt_id = prompt_id
    if row.get("wave") in WAVES and "wave" not in bad:
        facts.wave = row["wave"]
    if row.get("expected_outputs") and "expected_outputs" not in bad:
        try:
            facts.template = normalize_output_template(row["expected_outputs"], None)
        except ValueError:
            pass
    if "depends_on" not in bad:
        try:
            facts.depends_on = parse_dependencies(row.get("depends_on", ""))
        except ValueError:
            pass
    return facts


def _cross_row_problems(facts: Sequence[_RowFacts]) -> list[_Problem]:
    problems: list[_Problem] = []
    first_line: dict[str, int] = {}
    by_id: dict[str, _RowFacts] = {}
    for row in facts:
        if row.prompt_id is None:
            continue
        if row.prompt_id in first_line:
            message = (
                f"duplicate prompt_id {row.prompt_id!r}, first defined on line "
                f"{first_line[row.prompt_id]} — rename one of them"
            )
            problems.append(_Problem(row.line, "prompt_id", message))
        else:
            first_line[row.prompt_id] = row.line
            by_id[row.prompt_id] = row

    template_owner: dict[str, _RowFacts] = {}
    for row in facts:
        if row.template is None:
            continue
        owner = template_owner.setdefault(row.template, row)
        if owner is not row:
            message = (
                f"{row.template!r} collides with {owner.prompt_id or 'the row'} on line "
                f"{owner.line} — give each prompt its own output path"
            )
            problems.append(_Problem(row.line, "expected_outputs", message))

    for row in facts:
        for dep in row.depends_on:
            target = by_id.get(dep.prompt_id)
            if target is None:
                close = difflib.get_close_matches(dep.prompt_id, list(by_id), n=1)
                hint = f"did you mean {close[0]}?" if close else "add its row or fix the spelling"
                message = f"unknown dependency {dep.prompt_id!r} — {hint}"
                problems.append(_Problem(row.line, "depends_on", message))
            elif (
                dep.includes_same_day
                and row.wave in WAVES
                and target.wave in WAVES
                and WAVES.index(target.wave) > WAVES.index(row.wave)
            ):
                message = (
                    f"same-day dependency {str(dep)!r} is in the later wave {target.wave} but "
                    f"this row is in wave {row.wave} — move the row to a later wave or read "
                    "earlier days only"
                )
                problems.append(_Problem(row.line, "depends_on", message))

    for cycle in _cycles(by_id):
        line = min(by_id[pid].line for pid in cycle[:-1])
        message = (
            f"dependency cycle {' -> '.join(cycle)} — Dagster refuses cycles between assets "
            "even across days; remove one of these dependencies"
        )
        problems.append(_Problem(line, "depends_on", message))
    return problems




_KNOWN = frozenset(COLUMNS) | frozenset(OPTIONAL_HEADER_COLUMNS)


def _cycles(by_id: Mapping[str, _RowFacts]) -> list[list[str]]:
    """Cycles between rows, offsets ignored: Dagster refuses them whatever the day offsets."""
    edges = {
        pid: sorted(
            {d.prompt_id for d in row.depends_on if d.prompt_id in by_id and d.prompt_id != pid},
            key=lambda other: by_id[other].line,
        )
        for pid, row in by_id.items()
    }
    order = sorted(by_id, key=lambda pid: by_id[pid].line)
    return find_cycles(edges, order)

