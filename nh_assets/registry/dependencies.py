"""The ``depends_on`` cell: which prompt, and which days of it, a row reads.

Dagster refuses any cycle between asset keys whatever the partition offsets, so a dependency is
a prompt plus a window of day offsets; the loader checks cross-row facts (unknown ids, cycles)
separately. Prompt ids are checked here too, because a dependency names one.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEP_RE = re.compile(r"(?P<id>[^@?\s]+)(?:@(?P<start>[+-]?[0-9]+)(?:\.\.(?P<end>[+-]?[0-9]+))?)?(?P<optional>\?)?")
OPTIONAL_MARKER = "?"
# Copied from dagster._core.definitions.utils.DISALLOWED_NAMES (a private
# module): Dagster refuses these as asset names, so refuse them here with a
# line number instead of at definition time.
_DAGSTER_RESERVED = frozenset(
    ["context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict"]
    + ["output_arg_dict", "int", "str", "float", "bool", "input", "output", "type"]
    + keyword.kwlist
)


class CellErrors(ValueError):
    """Several problems in one cell, reported as separate lines rather than one long one."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


def prompt_id_problem(value: str) -> str | None:
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
    ``optional`` (written ``prompt_id?``) says the row is still worth running when that same-day
    input failed: the artifact is built from the rest and names what is missing. Past days are
    optional anyway (history may be missing), so only a same-day entry takes the marker.
    """

    prompt_id: str
    start_offset: int = 0
    end_offset: int = 0
    optional: bool = False

    def __post_init__(self) -> None:
        problem = prompt_id_problem(self.prompt_id)
        if problem:
            raise ValueError(problem)
        if not self.start_offset <= self.end_offset <= 0:
            raise ValueError(
                f"day window {self.start_offset}..{self.end_offset} of {self.prompt_id!r} "
                "is invalid — offsets count days back and need start <= end <= 0, "
                "e.g. @-7..-1"
            )
        if self.optional and not self.is_same_day:
            raise ValueError(
                f"{Dependency(self.prompt_id, self.start_offset, self.end_offset)} is marked optional, but "
                f"inputs from past days are always optional — drop the {OPTIONAL_MARKER}"
            )

    @classmethod
    def parse(cls, text: str) -> Dependency:
        """Parse ``id``, ``id@-N`` or ``id@-A..-B``; raises ValueError with a fix hint."""
        match = _DEP_RE.fullmatch(text.strip())
        if not match:
            raise ValueError(
                f"bad dependency {text.strip()!r} — write prompt_id, prompt_id@-N "
                "or prompt_id@-A..-B (add ? to a same-day entry to make it optional)"
            )
        optional = match["optional"] is not None
        if match["start"] is None:
            return cls(match["id"], optional=optional)
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
        return cls(match["id"], start, end, optional)

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
            return self.prompt_id + (OPTIONAL_MARKER if self.optional else "")
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
        raise CellErrors(errors)
    return tuple(parsed)

