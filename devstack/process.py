"""Start, watch and stop one local server: pid files, health waits, graceful stop.

Every server of the stack is described by a `Server` (command, ports, health check, log
file). This module knows nothing about Kafka or Azurite; it only runs what it is given.

A pid file (`<run_dir>/<name>.json`) records the pid *and* the process start time, so a
recycled pid is never mistaken for one of ours and `stop` never signals a stranger.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HealthCheck = Callable[[], None]
"""Returns when the server answers; raises (any exception) when it does not yet."""


class StackError(Exception):
    """A server of the local stack could not be started, checked or stopped."""


@dataclass(frozen=True)
class Server:
    """What the stack needs to know to run one server."""

    name: str
    command: Sequence[str]
    ports: Mapping[str, int]
    health: HealthCheck
    log_file: Path
    data_dir: Path
    """What it keeps between runs; `up --fresh` deletes it."""
    prepare: Callable[[], None] | None = None
    """Runs before each start (write config files, format storage, check tools)."""
    start_timeout: float = 90.0
    stop_timeout: float = 30.0


@dataclass(frozen=True)
class Running:
    """A server process this stack started, as its pid file records it."""

    name: str
    pid: int
    start_ticks: int
    ports: Mapping[str, int]


def http_health(url: str) -> HealthCheck:
    """A health check that passes when `GET url` answers 200."""

    def check() -> None:
        response = httpx.get(url, timeout=3.0)
        if response.status_code != 200:
            raise StackError(f"GET {url} answered {response.status_code}")

    return check


# Popen objects of servers started by this Python process, kept so they are reaped on stop
# instead of lingering as zombies (or warning in Popen.__del__) in long test sessions.
_children: dict[int, subprocess.Popen[bytes]] = {}


def start_ticks_of(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], int(fields[19])
    return None if state in ("Z", "X") else start_ticks


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (other processes wait) for the block's duration."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def read_running(run_dir: Path, name: str) -> Running | None:
    """The server's process if its pid file names a live process we started, else None."""
    path = _pid_file(run_dir, name)
    try:
        recorded = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    running = Running(name, recorded["pid"], recorded["start_ticks"], recorded["ports"])
    if start_ticks_of(running.pid) != running.start_ticks:
        path.unlink(missing_ok=True)  # stale: the process ended or the pid was reused
        return None
    return running


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on (or holds) host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers set, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A loopback port nothing listens on right now (for tests and side stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_health(server: Server) -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        server.health()
    except Exception as error:  # any failure of a health probe means "not healthy yet"
        return f"{type(error).__name__}: {error}"
    return None


def _log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def start(server: Server, run_dir: Path) -> Running:
    """Spawn the server in its own session, logging to its log file, and record its pid.

    Does not wait for health; call `wait_healthy`. Raises StackError when a port is taken
    or the command cannot be run.
    """
    for label, port in server.ports.items():
        if port_in_use(port):
            raise StackError(
                f"{server.name} cannot start: port {port} ({label}) on 127.0.0.1 is already "
                f"in use by another process. Stop it, or choose another port (see "
                f"`kusto-sink devstack up --help`). Log file: {server.log_file}"
            )
    if server.prepare is not None:
        try:
            server.prepare()
        except StackError as error:
            raise StackError(f"{error}. Log file: {server.log_file}") from error
    server.log_file.parent.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with server.log_file.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {server.name}\n".encode())
        log.flush()
        try:
            process = subprocess.Popen(
                list(server.command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal that ran `up` must not reach it.
                start_new_session=True,
            )
        except OSError as error:
            raise StackError(
                f"{server.name} cannot start: {server.command[0]!r}: {error}. "
                f"Log file: {server.log_file}"
            ) from error
    _children[process.pid] = process
    ticks = start_ticks_of(process.pid)
    running = Running(server.name, process.pid, ticks or 0, dict(server.ports))
    record = {"pid": running.pid, "start_ticks": running.start_ticks, "ports": running.ports}
    # Written aside and renamed: `status` reads pid files without the stack lock.
    partial = run_dir / f".{server.name}.json.partial"
    partial.write_text(json.dumps(record))
    partial.rename(_pid_file(run_dir, server.name))
    return running


def wait_healthy(server: Server, running: Running, timeout: float | None = None) -> None:
    """Wait until the server answers its health check; StackError if it dies or times out."""
    deadline = time.monotonic() + (timeout or server.start_timeout)
    reason: str | None = "not checked yet"
    while time.monotonic() < deadline:
        if start_ticks_of(running.pid) != running.start_ticks:
            exit_code = _reap(running.pid)
            raise StackError(
                f"{server.name} exited during start-up (exit code {exit_code}). "
                f"Log file: {server.log_file}\n{_log_tail(server.log_file)}"
            )
        reason = check_health(server)
        if reason is None:
            return
        time.sleep(0.3)
    raise StackError(
        f"{server.name} did not become healthy within {timeout or server.start_timeout:.0f} s "
        f"(last check: {reason}). Log file: {server.log_file}\n{_log_tail(server.log_file)}"
    )


def _reap(pid: int) -> int | None:
    """Collect the exit status if the process is our child; None when it is not."""
    child = _children.pop(pid, None)
    if child is None:
        return None
    return child.wait()


def stop(run_dir: Path, name: str, timeout: float) -> bool:
    """Stop the server recorded in its pid file: SIGTERM, then SIGKILL after `timeout`.

    Signals the whole process group (the server's session) so helper children go too.
    Returns False when there was nothing of ours to stop.
    """
    running = read_running(run_dir, name)
    if running is None:
        return False
    _signal_group(running.pid, signal.SIGTERM)
    if not _wait_gone(running, timeout):
        _signal_group(running.pid, signal.SIGKILL)
        _wait_gone(running, 5.0)
    _signal_group(running.pid, signal.SIGKILL)  # helpers it left in its group, if any
    _pid_file(run_dir, name).unlink(missing_ok=True)
    return True


def _wait_gone(running: Running, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _children.get(running.pid)
        if child is not None and child.poll() is not None:
            del _children[running.pid]
            return True
        if start_ticks_of(running.pid) != running.start_ticks:
            _reap(running.pid)
            return True
        time.sleep(0.1)
    return False


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
