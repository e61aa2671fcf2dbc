"""Debian's PostgreSQL as a local process, for Dagster's run, event-log and schedule storage.

`initdb` makes a cluster in a folder of its own (trust authentication, loopback only), and
the server runs in the foreground under the stack's process handling. PostgreSQL refuses to
run as root, so as root the cluster belongs to the `postgres` user Debian's package creates
and every command runs as that user (`runuser`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.process import Server, StackError, free_port, start, stop, wait_healthy

DATABASE = "dagster"
USER = "dagster"


def binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise StackError("postgres cannot run as root and `runuser` is not on PATH")
    return [runuser, "-u", "postgres", "--", *command]


def url(port: int, database: str = DATABASE) -> str:
    """The SQLAlchemy URL of a database, for dagster-postgres's ``postgres_url``.

    The driver is named: SQLAlchemy 2.1 takes plain ``postgresql://`` as psycopg 3, while
    dagster-postgres installs psycopg2."""
    return f"postgresql+psycopg2://{USER}@127.0.0.1:{port}/{database}"


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server of ``server_url``; returns its URL.

    One Dagster instance per database: runs, event logs and cursors of one test or one
    benchmark case never mix with another's."""
    import psycopg2  # comes with dagster-postgres; imported only where PostgreSQL is used

    base, _, _ = server_url.rpartition("/")
    connection = psycopg2.connect(server_url.replace("+psycopg2", ""))
    try:
        connection.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
    return f"{base}/{name}"


@contextmanager
def temporary_postgres(port: int | None = None) -> Iterator[str]:
    """A PostgreSQL server with a fresh cluster in a temporary folder, for the duration of
    the block; yields the URL of its ``dagster`` database. Stops it and removes the folder.
    """
    # Not under pytest's temp root: that is private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="kusto-sink-postgres-"))
    home.chmod(0o755)
    server = postgres_server(home / "cluster", home / "postgres.log", port or free_port())
    run_dir = home / "run"
    try:
        running = start(server, run_dir)
        try:
            wait_healthy(server, running)
            yield url(server.ports["postgres"])
        finally:
            stop(run_dir, server.name, server.stop_timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def postgres_server(home: Path, log_file: Path, port: int) -> Server:
    """PostgreSQL with its cluster in ``home/data``; created on first start."""
    bin_dir = binaries()
    if bin_dir is None:
        raise StackError(
            "postgres: no /usr/lib/postgresql/*/bin/initdb; apt-get install -y postgresql"
        )
    data = home / "data"
    sockets = home / "sockets"

    def prepare() -> None:
        if (data / "PG_VERSION").exists():
            return
        home.mkdir(parents=True, exist_ok=True)
        sockets.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(home, "postgres")
            shutil.chown(sockets, "postgres")
        command = [
            str(bin_dir / "initdb"),
            "-D", str(data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"postgres: initdb failed: {result.stderr[-2000:]}")
        # The database Dagster uses; made in single-user mode, before the server listens.
        create = [str(bin_dir / "postgres"), "--single", "-D", str(data), "postgres"]
        result = subprocess.run(
            _as_owner(create),
            input=f"CREATE DATABASE {DATABASE};\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"postgres: creating database {DATABASE} failed: {result.stderr}")

    command = _as_owner(
        [
            str(bin_dir / "postgres"),
            "-D", str(data),
            "-h", "127.0.0.1",
            "-p", str(port),
            "-k", str(sockets),
            # Concurrent run workers each hold a few connections.
            "-c", "max_connections=200",
            "-c", "fsync=off",
        ]
    )  # fmt: skip

    def health() -> None:
        ready = subprocess.run(
            [
                str(bin_dir / "pg_isready"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                USER,
                "-d",
                DATABASE,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if ready.returncode != 0:
            raise StackError(f"postgres on {port}: {ready.stdout.strip()}")

    return Server(
        name="postgres",
        command=command,
        ports={"postgres": port},
        health=health,
        log_file=log_file,
        data_dir=home,
        prepare=prepare,
        stop_timeout=15.0,
    )
