"""Where a warm CLI service listens, which service a step needs, and whom a service serves.

One service per machine and per *process configuration*: what a CLI fixes at start-up and every
session then shares (the executable, its environment — the system prompt, credentials, proxies
— the upstream endpoints, the rate bucket). Its key is a hash of those; values are hashed, never
stored, so a key names no secret. What differs per registry row (model, tools, temperature,
thinking budget) does not split services: 0.61.0 loads each session's settings from the
session's own working directory (``loadSettings(cwd)`` in ``session/new``), so every prompt
brings its own.

The service listens on a Unix socket beside the rate-limit bucket
(``<DAGSTER_HOME>/gemini_warm_cli``), owner-only, and peers are checked to be the same user. A
path longer than ``sun_path`` (108 bytes; pytest's temporary directories are) is reached through
``/proc/self/fd/N/…`` of the directory, which the kernel resolves without the length limit.

A service never outlives what it serves: each request names its *owner*, the outermost ancestor
of the step that is a Dagster or Celery process (``dagster dev``, the daemon, ``dagster job
execute``, a Celery worker) or, run in process, the step's own process; the service ends when
every owner it has served is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

from nh_assets.process_stat import process_stat

# Environment the CLI reads at start-up; everything else (Dagster's per-step variables) may
# differ between steps without needing another service.
_CLI_ENV = re.compile(r"^(GEMINI_|GOOGLE_|CODE_ASSIST|CLOUDSDK_|NODE_|HTTPS?_PROXY$|NO_PROXY$|PATH$|TMPDIR$|LANG$|LC_|TZ$)", re.I)
# Replaced by the service with its own gates and home; they name a step's temporary ports and folders.
_SERVICE_OWNED = {"GOOGLE_GEMINI_BASE_URL", "CODE_ASSIST_ENDPOINT", "HOME", "GEMINI_CLI_HOME"}
_OWNER_PROGRAMS = re.compile(r"^(dagster|dagster-daemon|dagster-webserver|celery)$")
SUN_PATH_MAX = 107


def service_key(config: Mapping, cli_env: Mapping[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(cli_env):
        if _CLI_ENV.match(name) and name not in _SERVICE_OWNED:
            digest.update(f"\0{name}\0{cli_env[name]}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _reachable(path: Path) -> Iterator[str]:
    """A name for ``path`` short enough for ``bind``/``connect``."""
    if len(str(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect(path: Path, timeout_s: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        with _reachable(path) as name:
            sock.connect(name)
        sock.settimeout(timeout_s)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(path: Path) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _reachable(path) as name:
        sock.bind(name)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


def same_user(sock: socket.socket) -> bool:
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


@contextlib.contextmanager
def file_lock(path: Path, *, blocking: bool) -> Iterator[bool]:
    """An exclusive ``flock``; yields whether it was taken. The kernel frees it when its holder dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process."""
    stat = process_stat(pid)
    return stat.start_ticks if stat else None


def alive(owner: tuple[int, int]) -> bool:
    return start_time(owner[0]) == owner[1]


def _parent(pid: int) -> int:
    stat = process_stat(pid)
    return stat.parent if stat else 0


def _is_owner_program(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [os.path.basename(a.decode(errors="replace")) for a in argv[:3] if a and not a.startswith(b"-")]
    return any(_OWNER_PROGRAMS.match(word) for word in words)


def owner_of(pid: int | None = None) -> tuple[int, int]:
    """The outermost Dagster or Celery ancestor of ``pid`` (default: this process), or ``pid``."""
    pid = pid or os.getpid()
    owner, current = pid, pid
    while current > 1:
        if _is_owner_program(current):
            owner = current
        current = _parent(current)
    return owner, start_time(owner) or 0
