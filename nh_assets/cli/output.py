"""How ``nh`` prints: aligned text tables for people, one JSON document for scripts.

Scripts parse ``--json`` output, so it goes to stdout alone (messages go to stderr) and its shape
is the same whether a command succeeds or reports a failure through its exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> str:
    """A plain table: columns padded to their widest cell, long cells cut with an ellipsis."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(h) for h in headers], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_json(document: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(document, indent=2, sort_keys=False, default=str), file=stream or sys.stdout)


def note(message: str) -> None:
    """A message for the person at the terminal, kept out of stdout so --json stays parseable."""
    print(message, file=sys.stderr, flush=True)


class Progress:
    """One status line that follows a run or backfill: rewritten in place on a terminal, one line
    per change otherwise (a log file or CI keeps every distinct state, never thousands of repeats)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = ""

    def show(self, text: str) -> None:
        if text == self.last:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text

    def done(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
