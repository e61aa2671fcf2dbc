"""`dagster-daemon run` on the project's workspace, as a process group of its own: the
sensors, run queue and retries of a real deployment, for tests and the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.stack import REPO


def start_daemon(home: Path, settings: Path, log: Path) -> subprocess.Popen[bytes]:
    """The daemon of the instance in ``home``, serving the sink of ``settings``."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "KUSTO_SINK_CONFIG": str(settings)}
    command = [str(Path(sys.executable).with_name("dagster-daemon")), "run"]
    with log.open("wb") as output:
        # Its own session, so stopping it reaches the code server and run workers it started.
        return subprocess.Popen(
            [*command, "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_daemon(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    # Like `dagster dev`, the daemon shuts down cleanly on SIGINT; what outlives the grace
    # period (code server, run workers) goes with its group.
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@contextmanager
def dagster_daemon(home: Path, settings: Path) -> Iterator[Path]:
    """A running daemon while the block runs; yields its log, ``home/daemon.log``."""
    log = home / "daemon.log"
    process = start_daemon(home, settings, log)
    try:
        yield log
    finally:
        stop_daemon(process)
