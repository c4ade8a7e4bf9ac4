"""Prompt registry: the TSV file that declares every asset of the daily pipeline.

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
    columns (all of ``COLUMNS`` are required, in any order; extra columns are
    ignored). Blank lines and lines starting with ``#`` are skipped, but line
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

import argparse
import difflib
import heapq
import keyword
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

WAVES: tuple[str, ...] = ("search", "aggregator", "tagger", "render", "export")
CONCURRENCY_LIMITS: Mapping[str, int] = MappingProxyType(
    {"sequential": 1, "low": 2, "medium": 4, "high": 8}
)
# Output format -> required file extension of expected_outputs.
OUTPUT_FORMATS: Mapping[str, str] = MappingProxyType(
    {"markdown": ".md", "tags_json": ".json", "html": ".html", "site_payload": ".json"}
)
BUILTIN_MODEL = "builtin"
NO_TOOLS = "none"
YOLO_TOOL = "yolo"

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
OPTIONAL_COLUMNS: frozenset[str] = frozenset({"depends_on", "notes"})

REGISTRY_ENV_VAR = "NH_REGISTRY"
DEFAULT_REGISTRY_PATH = Path(__file__).resolve().parents[1] / "registry" / "prompts.tsv"
EXIT_INVALID = 10

WaveName = Literal["search", "aggregator", "tagger", "render", "export"]
ConcurrencyClass = Literal["sequential", "low", "medium", "high"]
OutputFormat = Literal["markdown", "tags_json", "html", "site_payload"]

_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODEL_RE = re.compile(r"gemini-[a-z0-9.\-]+")
_TOOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DEP_RE = re.compile(r"(?P<id>[^@\s]+)(?:@(?P<start>[+-]?[0-9]+)(?:\.\.(?P<end>[+-]?[0-9]+))?)?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ESCAPE_RE = re.compile(r"\\([\\nt])")
_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t"}
# Copied from dagster._core.definitions.utils.DISALLOWED_NAMES (a private
# module): Dagster refuses these as asset names, so refuse them here with a
# line number instead of at definition time.
_DAGSTER_RESERVED = frozenset(
    ["context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict"]
    + ["output_arg_dict", "int", "str", "float", "bool", "input", "output", "type"]
    + keyword.kwlist
)


class _CellErrors(ValueError):
    """Several problems in one cell, reported as separate lines rather than one long one."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


def _prompt_id_problem(value: str) -> str | None:
    if not _ID_RE.fullmatch(value):
        return (
            f"{value!r} is not a valid asset name — use letters, digits and _, "
            "not starting with a digit"
        )
    if value in _DAGSTER_RESERVED:
        return f"{value!r} is reserved by Dagster or Python — choose another prompt_id"
    return None


@dataclass(frozen=True)
class Dependency:
    """One entry of depends_on: read `prompt_id` for the days start_offset..end_offset.

    Offsets are relative to the partition being computed (0 = same day,
    -1 = the day before) and inclusive; start_offset <= end_offset <= 0.
    """

    prompt_id: str
    start_offset: int = 0
    end_offset: int = 0

    def __post_init__(self) -> None:
        problem = _prompt_id_problem(self.prompt_id)
        if problem:
            raise ValueError(problem)
        if not self.start_offset <= self.end_offset <= 0:
            raise ValueError(
                f"day window {self.start_offset}..{self.end_offset} of {self.prompt_id!r} "
                "is invalid — offsets count days back and need start <= end <= 0, "
                "e.g. @-7..-1"
            )

    @classmethod
    def parse(cls, text: str) -> Dependency:
        """Parse ``id``, ``id@-N`` or ``id@-A..-B``; raises ValueError with a fix hint."""
        match = _DEP_RE.fullmatch(text.strip())
        if not match:
            raise ValueError(
                f"bad dependency {text.strip()!r} — write prompt_id, prompt_id@-N "
                "or prompt_id@-A..-B"
            )
        if match["start"] is None:
            return cls(match["id"])
        start = int(match["start"])
        end = int(match["end"]) if match["end"] is not None else start
        if start > 0 or end > 0:
            raise ValueError(
                f"{text.strip()!r} points to a future day — offsets count days back, "
                "so use @-N or @-A..-B with values <= 0"
            )
        if start > end:
            raise ValueError(
                f"{text.strip()!r} has its window backwards — write the earlier day first, "
                "e.g. @-7..-1"
            )
        return cls(match["id"], start, end)

    @property
    def is_same_day(self) -> bool:
        return self.start_offset == self.end_offset == 0

    @property
    def includes_same_day(self) -> bool:
        # A window ending today still orders this row after the dependency
        # within the same run, just like a plain same-day dependency.
        return self.end_offset == 0

    def __str__(self) -> str:
        if self.is_same_day:
            return self.prompt_id
        if self.start_offset == self.end_offset:
            return f"{self.prompt_id}@{self.start_offset}"
        return f"{self.prompt_id}@{self.start_offset}..{self.end_offset}"


def parse_dependencies(value: str | Iterable[str | Dependency]) -> tuple[Dependency, ...]:
    """Parse a depends_on cell (or a sequence of entries) into Dependency objects.

    Raises one ValueError naming every bad entry, so a row with several typos
    is fixed in one pass.
    """
    if isinstance(value, str):
        entries: list[str | Dependency] = [part.strip() for part in value.split(",")]
        if entries == [""]:
            return ()
    else:
        entries = list(value)
    parsed: list[Dependency] = []
    errors: list[str] = []
    for entry in entries:
        if isinstance(entry, Dependency):
            parsed.append(entry)
        elif isinstance(entry, Mapping):
            # The shape model_dump() produces, so dumped specs validate again.
            try:
                parsed.append(Dependency(**entry))
            except (TypeError, ValueError) as exc:
                errors.append(f"bad dependency {dict(entry)!r}: {exc}")
        elif not isinstance(entry, str) or not entry.strip():
            errors.append("empty entry — remove the stray comma")
        else:
            try:
                parsed.append(Dependency.parse(entry))
            except ValueError as exc:
                errors.append(str(exc))
    seen: set[str] = set()
    for dep in parsed:
        if dep.prompt_id in seen:
            errors.append(
                f"{dep.prompt_id!r} is listed more than once — Dagster allows one input per "
                "asset key, so merge the entries into one window (e.g. x@-1..0)"
            )
        seen.add(dep.prompt_id)
    if errors:
        raise _CellErrors(errors)
    return tuple(parsed)


def _normalize_output_template(value: str, output_format: str | None) -> str:
    """Check an expected_outputs template and return its normalized form."""
    errors: list[str] = []
    if "\\" in value:
        errors.append(f"{value!r} contains a backslash — use / between path segments")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        errors.append(f"{value!r} is absolute — give a path relative to the data root")
    path = PurePosixPath(value)
    if ".." in path.parts:
        errors.append(f"{value!r} contains '..' — outputs must stay under the data root")
    if "{date}" not in value:
        errors.append(f"{value!r} lacks {{date}} — add it so each day gets its own file")
    elif re.search(r"[{}]", value.replace("{date}", "")):
        errors.append(f"{value!r} has a placeholder other than {{date}} — remove it")
    if output_format in OUTPUT_FORMATS and path.suffix != OUTPUT_FORMATS[output_format]:
        wanted = OUTPUT_FORMATS[output_format]
        errors.append(
            f"{value!r} has extension {path.suffix or '(none)'!r} but output_format "
            f"{output_format} writes {wanted} — end the path with {wanted}"
        )
    if errors:
        raise _CellErrors(errors)
    return str(path)


def _choice(value: Any, allowed: Iterable[str], what: str) -> Any:
    allowed = tuple(allowed)
    if isinstance(value, str) and value not in allowed:
        raise ValueError(f"{value!r} is not a valid {what} — use one of: {', '.join(allowed)}")
    return value


def _number(value: Any, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number — write a plain number")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(f"{text!r} is not {noun} — write e.g. {low!r}") from None
    elif isinstance(value, (int, float)):
        number = value
        if kind is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not an integer — drop the fraction")
            number = int(value)
    else:
        return value  # let pydantic report the type error
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number — write e.g. {low!r}")
    if not low <= number <= high:
        raise ValueError(
            f"{number!r} is out of range {low!r}–{high!r} — use a value between "
            f"{low!r} and {high!r}"
        )
    return number


class PromptSpec(BaseModel):
    """One validated registry row.

    Field order matters: cross-field validators only see fields declared
    before them (output_format before model, model before tools, output_format
    before expected_outputs, prompt_id before depends_on).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_id: str
    title: str = Field(min_length=1)
    wave: WaveName
    category: str = Field(min_length=1)
    output_format: OutputFormat
    model: str
    tools: tuple[str, ...]
    temperature: float
    token_budget: int
    timeout_sec: int
    max_retries: int
    concurrency_class: ConcurrencyClass
    expected_outputs: str
    depends_on: tuple[Dependency, ...] = ()
    prompt: str = Field(min_length=1)
    notes: str = ""
    line: int = 0

    @field_validator("prompt_id")
    @classmethod
    def _check_prompt_id(cls, value: str) -> str:
        problem = _prompt_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("wave", mode="before")
    @classmethod
    def _check_wave(cls, value: Any) -> Any:
        return _choice(value, WAVES, "wave")

    @field_validator("concurrency_class", mode="before")
    @classmethod
    def _check_concurrency(cls, value: Any) -> Any:
        return _choice(value, CONCURRENCY_LIMITS, "concurrency_class")

    @field_validator("output_format", mode="before")
    @classmethod
    def _check_output_format(cls, value: Any) -> Any:
        return _choice(value, OUTPUT_FORMATS, "output_format")

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str, info: ValidationInfo) -> str:
        if value != BUILTIN_MODEL and not _MODEL_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Gemini model name — write e.g. gemini-2.5-flash, "
                f"or {BUILTIN_MODEL} for a deterministic Python asset"
            )
        output_format = info.data.get("output_format")
        if value == BUILTIN_MODEL and output_format not in (None, "site_payload"):
            raise ValueError(
                f"{BUILTIN_MODEL} is only allowed with output_format site_payload "
                f"(this row has {output_format}) — name a Gemini model"
            )
        if value != BUILTIN_MODEL and output_format == "site_payload":
            raise ValueError(
                f"output_format site_payload is computed in Python, not by {value} — "
                f"set model to {BUILTIN_MODEL}"
            )
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _check_tools(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",")]
            if items == [NO_TOOLS]:
                items = []
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            return value
        errors: list[str] = []
        for item in items:
            if item == NO_TOOLS:
                errors.append(f"{NO_TOOLS} cannot be combined with other tools — drop it")
            elif not isinstance(item, str) or not _TOOL_RE.fullmatch(item):
                errors.append(f"{item!r} is not a tool name — write e.g. google_web_search")
        duplicates = sorted({item for item in items if items.count(item) > 1})
        if duplicates:
            errors.append(f"{', '.join(map(str, duplicates))} listed twice — list each tool once")
        if items and info.data.get("model") == BUILTIN_MODEL:
            errors.append(f"{BUILTIN_MODEL} rows call no CLI — set tools to {NO_TOOLS}")
        if errors:
            raise _CellErrors(errors)
        return tuple(items)

    @field_validator("temperature", mode="before")
    @classmethod
    def _check_temperature(cls, value: Any) -> Any:
        return _number(value, float, 0.0, 2.0)

    @field_validator("token_budget", mode="before")
    @classmethod
    def _check_token_budget(cls, value: Any) -> Any:
        return _number(value, int, 256, 1_000_000)

    @field_validator("timeout_sec", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> Any:
        return _number(value, int, 10, 3600)

    @field_validator("max_retries", mode="before")
    @classmethod
    def _check_retries(cls, value: Any) -> Any:
        return _number(value, int, 0, 10)

    @field_validator("expected_outputs")
    @classmethod
    def _check_expected_outputs(cls, value: str, info: ValidationInfo) -> str:
        return _normalize_output_template(value, info.data.get("output_format"))

    @field_validator("depends_on", mode="before")
    @classmethod
    def _check_depends_on(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, (str, list, tuple)):
            return value
        deps = parse_dependencies(value)
        own_id = info.data.get("prompt_id")
        for dep in deps:
            if dep.prompt_id == own_id and dep.includes_same_day:
                raise ValueError(
                    f"{own_id} depends on itself on the same day — read earlier days "
                    f"only (e.g. {own_id}@-1) or remove the entry"
                )
        return deps

    def output_path(self, date: str) -> PurePosixPath:
        """The output file for partition `date` (YYYY-MM-DD), relative to the data root."""
        if not _DATE_RE.fullmatch(date):
            raise ValueError(f"date {date!r} is not YYYY-MM-DD")
        return PurePosixPath(self.expected_outputs.replace("{date}", date))

    @property
    def uses_llm(self) -> bool:
        return self.model != BUILTIN_MODEL

    @property
    def approval_mode(self) -> str:
        return "yolo" if YOLO_TOOL in self.tools else "default"

    @property
    def allowed_tools(self) -> tuple[str, ...]:
        """The CLI tool names proper: `tools` without the yolo marker."""
        return tuple(tool for tool in self.tools if tool != YOLO_TOOL)

    @property
    def concurrency_limit(self) -> int:
        return CONCURRENCY_LIMITS[self.concurrency_class]


class RegistryError(Exception):
    """The registry file is unusable; `problems` holds one line per problem."""

    def __init__(self, path: str | os.PathLike[str], problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        header = f"registry {self.path} has {len(self.problems)} problem(s):"
        return "\n".join([header, *self.problems])


@dataclass(frozen=True)
class Registry:
    """All prompts of one registry file, in file order."""

    path: Path
    prompts: tuple[PromptSpec, ...]
    _index: Mapping[str, PromptSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {spec.prompt_id: spec for spec in self.prompts})

    def by_id(self, prompt_id: str) -> PromptSpec:
        try:
            return self._index[prompt_id]
        except KeyError:
            raise KeyError(f"no prompt {prompt_id!r} in registry {self.path}") from None

    def ids(self) -> tuple[str, ...]:
        return tuple(spec.prompt_id for spec in self.prompts)

    def waves(self) -> dict[str, tuple[PromptSpec, ...]]:
        """Prompts grouped by wave; keys are all of WAVES in wave order."""
        return {
            wave: tuple(spec for spec in self.prompts if spec.wave == wave) for wave in WAVES
        }

    def topological_order(self) -> tuple[PromptSpec, ...]:
        """Every prompt after all prompts it depends on (any day offset).

        Ties keep file order, so the result is stable for logs and tests. A
        prompt reading its own earlier days is not an edge.
        """
        position = {spec.prompt_id: i for i, spec in enumerate(self.prompts)}
        pending = {
            spec.prompt_id: {
                dep.prompt_id
                for dep in spec.depends_on
                if dep.prompt_id != spec.prompt_id and dep.prompt_id in position
            }
            for spec in self.prompts
        }
        dependents: dict[str, list[str]] = {pid: [] for pid in position}
        for pid, deps in pending.items():
            for dep in deps:
                dependents[dep].append(pid)
        ready = [position[pid] for pid, deps in pending.items() if not deps]
        heapq.heapify(ready)
        order: list[PromptSpec] = []
        while ready:
            spec = self.prompts[heapq.heappop(ready)]
            order.append(spec)
            for child in dependents[spec.prompt_id]:
                pending[child].discard(spec.prompt_id)
                if not pending[child]:
                    heapq.heappush(ready, position[child])
        if len(order) != len(self.prompts):
            raise ValueError(f"registry {self.path} has a dependency cycle")
        return tuple(order)


def registry_path_from_env() -> Path:
    """$NH_REGISTRY if set, else the registry shipped with the repo."""
    override = os.environ.get(REGISTRY_ENV_VAR, "").strip()
    return Path(override).expanduser() if override else DEFAULT_REGISTRY_PATH


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
            if isinstance(cause, _CellErrors):
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


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Read and validate a registry TSV; raises RegistryError listing every problem.

    Without `path`, reads registry_path_from_env().
    """
    file_path = Path(path) if path is not None else registry_path_from_env()
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
        row = {name: cells[i].strip() for i, name in enumerate(header) if name in COLUMNS}
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
    if "prompt_id" not in bad and prompt_id and _prompt_id_problem(prompt_id) is None:
        facts.prompt_id = prompt_id
    if row.get("wave") in WAVES and "wave" not in bad:
        facts.wave = row["wave"]
    if row.get("expected_outputs") and "expected_outputs" not in bad:
        try:
            facts.template = _normalize_output_template(row["expected_outputs"], None)
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

    for cycle in _find_cycles(by_id):
        line = min(by_id[pid].line for pid in cycle[:-1])
        message = (
            f"dependency cycle {' -> '.join(cycle)} — Dagster refuses cycles between assets "
            "even across days; remove one of these dependencies"
        )
        problems.append(_Problem(line, "depends_on", message))
    return problems


def _find_cycles(by_id: Mapping[str, _RowFacts]) -> list[list[str]]:
    """One cycle per strongly connected component, offsets ignored, self-edges skipped."""
    edges = {
        pid: sorted(
            {d.prompt_id for d in row.depends_on if d.prompt_id in by_id and d.prompt_id != pid},
            key=lambda other: by_id[other].line,
        )
        for pid, row in by_id.items()
    }
    # Tarjan's algorithm, iterative so a long chain cannot hit the recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in by_id:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = edges[node]
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])

    cycles = []
    for component in components:
        members = set(component)
        start = min(component, key=lambda pid: by_id[pid].line)
        # Shortest path back to start inside the component: the clearest cycle to show.
        previous: dict[str, str] = {}
        frontier = [start]
        found = False
        while frontier and not found:
            next_frontier = []
            for node in frontier:
                for child in edges[node]:
                    if child not in members:
                        continue
                    if child == start:
                        previous[start] = node
                        found = True
                        break
                    if child not in previous:
                        previous[child] = node
                        next_frontier.append(child)
                if found:
                    break
            frontier = next_frontier
        path = [start]
        node = previous[start]
        while node != start:
            path.append(node)
            node = previous[node]
        path.append(start)
        path.reverse()
        cycles.append(path)
    cycles.sort(key=lambda cycle: by_id[cycle[0]].line)
    return cycles


def _format_table(registry: Registry) -> str:
    def deps_cell(spec: PromptSpec, width: int = 48) -> str:
        text = ", ".join(str(dep) for dep in spec.depends_on) or "-"
        if len(text) <= width:
            return text
        shown: list[str] = []
        for dep in spec.depends_on:
            more = f" +{len(spec.depends_on) - len(shown)} more"
            if len(", ".join([*shown, str(dep)])) + len(more) > width:
                break
            shown.append(str(dep))
        return f"{', '.join(shown)} +{len(spec.depends_on) - len(shown)} more"

    header = ("id", "wave", "class", "model", "depends_on", "output")
    rows = [
        (s.prompt_id, s.wave, s.concurrency_class, s.model, deps_cell(s), s.expected_outputs)
        for s in registry.prompts
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nh_assets.registry",
        description="Inspect the NeuroHelix prompt registry (a TSV of prompts).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate",
        help="check a registry file and print its prompts",
        description=(
            "Validate a registry TSV. Prints a table and 'OK: N prompts' when valid; "
            f"otherwise prints every problem to stderr and exits {EXIT_INVALID}."
        ),
    )
    validate.add_argument(
        "path",
        nargs="?",
        help=f"registry TSV (default: ${REGISTRY_ENV_VAR}, else {DEFAULT_REGISTRY_PATH})",
    )
    args = parser.parse_args(argv)

    try:
        registry = load_registry(args.path)
    except RegistryError as err:
        print(err, file=sys.stderr)
        return EXIT_INVALID
    print(_format_table(registry))
    print(f"OK: {len(registry.prompts)} prompts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
