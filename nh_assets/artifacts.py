"""Writing and reading pipeline artifacts without ever losing a good one.

Every output is written to a temporary file beside its destination, flushed to disk and renamed
over it in one step, so a crash, a timeout or a failed validation leaves the previous good
artifact untouched and never a half-written file. The directory is fsynced after the rename: a
rename is only durable once its directory entry is, and a power loss must not bring back the old
file after Dagster recorded the new one. Files get ``0666`` less the umask (``0644`` usually),
like any file a program creates: the static site and other readers must be able to read them.

A writer holds an ``flock`` on its temporary file while writing. A ``kill -9`` mid-write
leaves the temporary file behind, unlocked; the next write of the same artifact removes such
leftovers, and never a temporary file another live writer still holds. A write that cannot
complete (a full disk) raises ``ArtifactWriteError``: one line with the cause and the fix, the
previous artifact unchanged, nothing partial left. Markdown artifacts carry a small front matter
(prompt id, date, model) that readers strip before feeding them to the next prompt.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import dagster as dg


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


class ArtifactWriteError(dg.Failure):
    """An artifact could not be written; the previous one is intact. A ``dg.Failure``, so the step
    fails with this one line rather than a traceback, and is not retried: a full disk stays full."""

    def __init__(self, path: Path, exc: OSError):
        self.path = path
        self.errno = exc.errno
        fix = {
            errno.ENOSPC: "free space under NH_DATA_ROOT or move it to a larger disk",
            errno.EDQUOT: "raise the disk quota of NH_DATA_ROOT's owner or free space",
            errno.EACCES: "give the Dagster user write access to NH_DATA_ROOT",
            errno.EROFS: "remount NH_DATA_ROOT read-write or move it",
        }.get(exc.errno or 0, "check NH_DATA_ROOT's disk and permissions")
        super().__init__(
            description=f"cannot write {path}: {exc.strerror or exc} — {fix}; the previous artifact is unchanged",
            metadata={"nh.failure_kind": "artifact_write", "path": str(path)},
            allow_retries=False,
        )


def _temp_name(path: Path) -> Path:
    # ".<name>.<random>.partial": the shape data_tree.scan_tree recognises as an artifact's leftover.
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"


def remove_abandoned_temps(path: Path) -> list[Path]:
    """Remove temporary files of ``path`` whose writer is gone (no flock held on them).

    A writer creates its file, then locks it; a cleaner that slips into those microseconds
    unlinks a live temp, and that writer's rename then fails with a clear ArtifactWriteError,
    the previous artifact intact. Writers of one artifact are rare anyway: one run per day."""
    removed = []
    for temp in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        try:
            fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            temp.unlink(missing_ok=True)
            removed.append(temp)
        finally:
            os.close(fd)
    return removed


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> WrittenArtifact:
    """Replace ``path`` with ``data`` atomically and durably; raises ``ArtifactWriteError``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_temps(path)
        temp = _temp_name(path)
        # O_EXCL and a random name: never follows or reuses someone else's file; mode 0666 & ~umask.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise ArtifactWriteError(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.replace(temp, path)
        _fsync_directory(path.parent)
    except BaseException as exc:
        # Only our own temp file is ever removed; the destination keeps its previous content.
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArtifactWriteError(path, exc) from None
        raise
    finally:
        os.close(fd)
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



def read_front_matter(text: str) -> dict[str, str]:
    """The ``key: value`` lines of a markdown artifact's front matter (empty without one)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end == -1:
        return {}
    fields = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def add_front_matter(text: str, fields: dict[str, object]) -> str:
    """``text`` with ``fields`` appended to its front matter (``text`` unchanged without one)."""
    end = text.find("\n---\n", 4) if text.startswith("---\n") else -1
    if end == -1:
        return text
    added = "".join(f"\n{key}: {value}" for key, value in fields.items())
    return text[:end] + added + text[end:]
