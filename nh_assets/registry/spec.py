"""One registry row as a validated model, and the registry as the file's rows in order.

Field validators turn each cell into a typed value or into messages that say what to write
instead; the loader (``load``) adds line and column. What a row's ``output_format`` means
(extension, whether a model is called) comes from the ``formats`` table, so a new format is a
new module there, not a new branch here.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from nh_assets.formats import FORMATS
from nh_assets.registry.graph import topological_order
from nh_assets.registry.dependencies import CellErrors, Dependency, parse_dependencies, prompt_id_problem

WAVES: tuple[str, ...] = ("search", "aggregator", "tagger", "render", "export")
CONCURRENCY_LIMITS: Mapping[str, int] = MappingProxyType(
    {"sequential": 1, "low": 2, "medium": 4, "high": 8}
)
BUILTIN_MODEL = "builtin"
NO_TOOLS = "none"
YOLO_TOOL = "yolo"
YES, NO = "yes", "no"
# The built-in tools of @google/gemini-cli 0.61.0 a prompt may declare (``tools.core``); the rest
# are the CLI's own machinery (plans, topics, sub-agents, trackers).
READ_TOOLS: tuple[str, ...] = (
    "google_web_search", "web_fetch", "read_file", "read_many_files", "list_directory", "glob", "grep_search",
)
WRITE_TOOLS: tuple[str, ...] = ("write_file", "replace", "run_shell_command", "write_todos")
CLI_TOOLS: tuple[str, ...] = READ_TOOLS + WRITE_TOOLS
THINKING_BUDGET_RANGE = (-1, 32768)
SECTION_SEPARATOR = ";"
# Each re-ask is a full model call with the previous answer pasted in: a few are worth it, more
# only burn quota on a model that does not follow the format.
MAX_REASKS = 5

WaveName = Literal["search", "aggregator", "tagger", "render", "export"]
ConcurrencyClass = Literal["sequential", "low", "medium", "high"]

_MODEL_RE = re.compile(r"gemini-[a-z0-9.\-]+")
_TOOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def normalize_output_template(value: str, output_format: str | None) -> str:
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
    if output_format in FORMATS and path.suffix != FORMATS[output_format].extension:
        wanted = FORMATS[output_format].extension
        errors.append(
            f"{value!r} has extension {path.suffix or '(none)'!r} but output_format "
            f"{output_format} writes {wanted} — end the path with {wanted}"
        )
    if errors:
        raise CellErrors(errors)
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
    output_format: str
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
    required_sections: tuple[str, ...] = ()
    blocks_publishing: bool = False
    thinking_budget: int | None = None
    max_reasks: int | None = None  # None: the format's default (``OutputFormat.default_reasks``)
    fallback_model: str | None = None  # asked instead when the model's daily quota is spent
    line: int = 0

    @field_validator("prompt_id")
    @classmethod
    def _check_prompt_id(cls, value: str) -> str:
        problem = prompt_id_problem(value)
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
        return _choice(value, FORMATS, "output_format")

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str, info: ValidationInfo) -> str:
        if value != BUILTIN_MODEL and not _MODEL_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Gemini model name — write e.g. gemini-2.5-flash, "
                f"or {BUILTIN_MODEL} for a deterministic Python asset"
            )
        fmt = FORMATS.get(info.data.get("output_format", ""))
        if fmt is not None and (value == BUILTIN_MODEL) == fmt.uses_model:
            computed = " or ".join(f.name for f in FORMATS.values() if not f.uses_model)
            raise ValueError(
                f"{BUILTIN_MODEL} is only allowed with output_format {computed} (this row has {fmt.name}) "
                "— name a Gemini model"
                if value == BUILTIN_MODEL
                else f"output_format {fmt.name} is computed in Python, not by {value} — set model to {BUILTIN_MODEL}"
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
            elif item != YOLO_TOOL and item not in CLI_TOOLS:
                close = difflib.get_close_matches(item, CLI_TOOLS, n=1)
                hint = f"did you mean {close[0]}?" if close else f"use one of: {', '.join(CLI_TOOLS)}"
                errors.append(f"{item!r} is not a tool of the pinned Gemini CLI — {hint}")
        duplicates = sorted({item for item in items if items.count(item) > 1})
        if duplicates:
            errors.append(f"{', '.join(map(str, duplicates))} listed twice — list each tool once")
        writes = sorted(set(items) & set(WRITE_TOOLS))
        if writes and YOLO_TOOL not in items:
            errors.append(
                f"{', '.join(writes)} change files or run commands and need approval, which a headless "
                f"run cannot give — add {YOLO_TOOL} to auto-approve them, or drop them"
            )
        if items and info.data.get("model") == BUILTIN_MODEL:
            errors.append(f"{BUILTIN_MODEL} rows call no CLI — set tools to {NO_TOOLS}")
        if errors:
            raise CellErrors(errors)
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
        return normalize_output_template(value, info.data.get("output_format"))

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

    @field_validator("required_sections", mode="before")
    @classmethod
    def _check_required_sections(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(SECTION_SEPARATOR) if part.strip())
        fmt = FORMATS.get(info.data.get("output_format", ""))
        if value and fmt is not None and not fmt.has_sections:
            raise ValueError(
                f"output_format {fmt.name} has no ## sections — leave required_sections empty"
            )
        return value

    @field_validator("thinking_budget", mode="before")
    @classmethod
    def _check_thinking_budget(cls, value: Any, info: ValidationInfo) -> Any:
        if value in (None, ""):
            return None
        if info.data.get("model") == BUILTIN_MODEL:
            raise ValueError(f"{BUILTIN_MODEL} rows call no model — leave thinking_budget empty")
        return _number(value, int, *THINKING_BUDGET_RANGE)

    @field_validator("blocks_publishing", mode="before")
    @classmethod
    def _check_blocks_publishing(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip() not in (YES, NO, ""):
                raise ValueError(f"{value!r} is not {YES} or {NO} — write {YES} or {NO}")
            return value.strip() == YES
        return value

    @field_validator("max_reasks", mode="before")
    @classmethod
    def _check_max_reasks(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _number(value, int, 0, MAX_REASKS)

    @field_validator("fallback_model", mode="before")
    @classmethod
    def _check_fallback_model(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        value = str(value).strip()
        model = info.data.get("model")
        if model == BUILTIN_MODEL:
            raise ValueError(f"{BUILTIN_MODEL} rows call no model — leave fallback_model empty")
        if value == BUILTIN_MODEL or not _MODEL_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a Gemini model name — write e.g. gemini-2.5-flash-lite")
        if value == model:
            raise ValueError(f"the fallback is the row's own model {model} — name another model or leave it empty")
        return value

    def output_path(self, date: str) -> PurePosixPath:
        """The output file for partition `date` (YYYY-MM-DD), relative to the data root."""
        if not _DATE_RE.fullmatch(date):
            raise ValueError(f"date {date!r} is not YYYY-MM-DD")
        return PurePosixPath(self.expected_outputs.replace("{date}", date))

    @property
    def reasks(self) -> int:
        """How often a rejected answer is sent back to the model with the complaints, per attempt."""
        return FORMATS[self.output_format].default_reasks if self.max_reasks is None else self.max_reasks

    @property
    def uses_llm(self) -> bool:
        return self.model != BUILTIN_MODEL

    @property
    def approval_mode(self) -> str:
        return "yolo" if YOLO_TOOL in self.tools else "default"

    @property
    def allowed_tools(self) -> tuple[str, ...]:
        """The CLI tools the call declares: ``tools`` without the yolo marker."""
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

    def topological_order(self) -> tuple[PromptSpec, ...]:
        """Every prompt after all prompts it depends on (any day offset); ties keep file order."""
        edges = {spec.prompt_id: [d.prompt_id for d in spec.depends_on] for spec in self.prompts}
        order = topological_order(edges, [spec.prompt_id for spec in self.prompts])
        return tuple(self._index[prompt_id] for prompt_id in order)
