"""A private, real PostgreSQL server for tests and benchmarks, from Debian's binaries.

No mock: ``initdb`` makes a throw-away cluster in a temporary directory and ``pg_ctl`` starts it
on a free loopback port with trust authentication for the test user. PostgreSQL refuses to run
as root, so when the tests run as root the cluster belongs to the ``postgres`` system user that
Debian's package creates (``scripts/install_test_services.sh`` installs the package). Each test
gets its own database from ``create_database``, so tests never see each other's runs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from nh_assets_tests.support.dagster_server import free_port


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries: the message says how to install them."""


def server_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or ``$NH_PG_BINDIR``)."""
    override = os.environ.get("NH_PG_BINDIR")
    candidates = [override] if override else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb) found; run `bash scripts/install_test_services.sh` "
        "(apt-get install postgresql) or set NH_PG_BINDIR"
    )


def dagster_url(url: str) -> str:
    """The SQLAlchemy form Dagster's storage and NH_POSTGRES_URL need (see settings)."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    data_dir: Path | None = None
    bindir: Path | None = None
    run_as: tuple[str, ...] = ()
    options: str = ""  # the server's -o options: a plain `pg_ctl start` would forget the port

    def pg_ctl(self, *args: str) -> None:
        """``pg_ctl -D DATA ARGS`` as the cluster's owner (``stop -m fast``, ``start``, ``restart``):
        for tests of a server that goes away under a running pipeline."""
        assert self.data_dir is not None and self.bindir is not None
        log = self.data_dir.parent / "server.log"
        options = ["-o", self.options] if "start" in args else []
        proc = subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(log), "-w", *options, *args],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def execute(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self, prefix: str = "nh") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Starts a fresh cluster; stops it and deletes its files on exit."""
    bindir = server_bindir()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    root = Path(tempfile.mkdtemp(prefix="nh-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    log = root / "server.log"

    def run(*args: str) -> None:
        proc = subprocess.run([*run_as, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            server_log = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr[-2000:]}{server_log}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets} "
            # A test cluster: durability is not what is measured, and fsync only slows the disk.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        try:
            yield PostgresServer("127.0.0.1", port, user, data, bindir, tuple(run_as), options)
        finally:
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
