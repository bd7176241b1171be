"""A throwaway PostgreSQL server for the tests, started from the binaries on this machine.

The server listens on a free loopback port with its data and socket in a temporary directory (in
memory where the system has a tmpfs at /dev/shm), and is stopped (immediate mode: nothing in it is
worth keeping) when the session ends. PostgreSQL refuses to run as root, so as root the server runs
as the ``postgres`` user (or ``nobody``) and the directory is handed to that user. Each test gets a
database of its own (:func:`fresh_database`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
# Ports tried: a free port can be taken between our probe and the server's bind (by another
# pytest-xdist worker starting its own server at the same moment, say).
START_ATTEMPTS = 3
ADMIN_USER = "suno"
# Where Linux keeps a tmpfs: the server's files live in memory there. On a disk shared with other
# work, CREATE DATABASE alone took ~0.35 s (fsync=off notwithstanding) against ~0.015 s in memory,
# and every test that asks for a database of its own makes one.
MEMORY_DIR = Path("/dev/shm")


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when they are missing."""
    candidates: list[str] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if all((Path(directory) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(
        "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its address and the admin URL (trust authentication, loopback only)."""

    port: int
    admin_url: str
    binaries: Path | None = None
    data: Path | None = None
    user: str | None = None  # whom the server runs as (None: ourselves)

    def url_for(self, database: str) -> str:
        return f"postgresql://{ADMIN_USER}@127.0.0.1:{self.port}/{database}"


@contextmanager
def running_postgres(binaries: Path) -> Iterator[PostgresServer]:
    """Start a server in a temporary directory; stop it and remove the directory on exit."""
    user = _run_as()
    in_memory = MEMORY_DIR.is_dir() and os.access(MEMORY_DIR, os.W_OK)
    root = Path(tempfile.mkdtemp(prefix="suno-pg-", dir=MEMORY_DIR if in_memory else None))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run(args, check=True, cwd=root, user=user, capture_output=True, timeout=START_TIMEOUT_S)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", ADMIN_USER, "--auth=trust", "-E", "UTF8")
        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_port()
            # fsync off: a test database is thrown away, and the disk is shared with other work.
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c max_connections=200"
            )
            try:
                run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
                break
            except subprocess.CalledProcessError:
                if attempt == START_ATTEMPTS:
                    raise
        try:
            admin_url = f"postgresql://{ADMIN_USER}@127.0.0.1:{port}/postgres"
            yield PostgresServer(port=port, admin_url=admin_url, binaries=binaries, data=data, user=user)
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    """``server`` stopped as by a crash (immediate mode) while the block runs, then started again on the
    same port with the same options (``pg_ctl restart`` reads them back from the data directory)."""
    assert server.binaries is not None, "a server from running_postgres"
    assert server.data is not None, "a server from running_postgres"
    pg_ctl, log = str(server.binaries / "pg_ctl"), str(server.data.parent / "server.log")

    def run(*args: str) -> None:
        subprocess.run(
            [pg_ctl, "-D", str(server.data), *args],
            check=True,
            cwd=server.data.parent,
            user=server.user,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )

    run("-m", "immediate", "-w", "stop")
    try:
        yield
    finally:
        run("-l", log, "-w", "restart")  # its output to the log: a pipe would be held open by the server


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """A new empty database for one test (its URL), dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield server.url_for(name)
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session; skips when the binaries are not installed."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin"
        )
    with running_postgres(binaries) as server:
        yield server


def _server_processes(server: PostgresServer) -> tuple[int, list[int]]:
    """The postmaster's pid and its children's (the backends and background workers)."""
    assert server.data is not None, "a server from running_postgres"
    postmaster = int((server.data / "postmaster.pid").read_text().splitlines()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The fields after the command's closing parenthesis: state, then the parent's pid.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return postmaster, children


@contextmanager
def hung(server: PostgresServer) -> Iterator[None]:
    """``server`` frozen (SIGSTOP to the postmaster, then to every backend) while the block runs:
    connections stay open and a new one is accepted by the kernel, but nothing answers, as with a
    hung host or a network partition. Thawed afterwards, the server carries on where it stopped."""
    postmaster, _ = _server_processes(server)
    os.kill(postmaster, signal.SIGSTOP)  # first: it forks no new backend while frozen
    _, children = _server_processes(server)
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in (*children, postmaster):
            os.kill(pid, signal.SIGCONT)
