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
from pathlib import Path

from devstack.process import Server, StackError

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


def url(port: int) -> str:
    """The SQLAlchemy URL of the Dagster database, for dagster-postgres's ``postgres_url``.

    The driver is named: SQLAlchemy 2.1 takes plain ``postgresql://`` as psycopg 3, while
    dagster-postgres installs psycopg2."""
    return f"postgresql+psycopg2://{USER}@127.0.0.1:{port}/{DATABASE}"


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
