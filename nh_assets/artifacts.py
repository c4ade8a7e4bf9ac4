"""Writing and reading pipeline artifacts without ever losing a good one.

Every output is written to a temporary file beside its destination, flushed to disk and renamed
over it in one step, so a crash, a timeout or a failed validation leaves the previous good
artifact untouched and never a half-written file. Markdown artifacts carry a small front matter
(prompt id, date, model) that readers strip before feeding them to the next prompt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WrittenArtifact:
    path: Path
    sha256: str
    size_bytes: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> WrittenArtifact:
    """Replace ``path`` with ``data`` atomically (same-directory temp file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Only our own temp file is ever removed; the destination keeps its previous content.
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return WrittenArtifact(path=path, sha256=sha256_bytes(data), size_bytes=len(data))


def with_front_matter(body: str, fields: dict[str, object]) -> str:
    lines = ["---"]
    lines += [f"{key}: {value}" for key, value in fields.items()]
    lines += ["---", "", body.strip(), ""]
    return "\n".join(lines)


def strip_front_matter(text: str) -> str:
    if not text.startswith("---\n"):
        return text
    end = text.find("\n---\n", 4)
    if end == -1:
        return text
    return text[end + len("\n---\n"):].lstrip("\n")

