"""Test sessions sharing one local stack: start what is missing, stop it after the last one.

Several pytest sessions may use the same stack at once (developers working side by side, a
test run beside `make demo`). Each holds a lease while it runs. Servers a session had to start
are stopped when the last lease ends; servers that were running before (started with
`kusto-sink devstack up`) are never stopped by tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.process import locked, start_ticks_of
from devstack.stack import StackConfig, down, up


@contextmanager
def shared_stack(config: StackConfig, only: Collection[str] | None = None) -> Iterator[StackConfig]:
    """The stack (or the `only` servers), up and healthy, for the duration of the block."""
    sessions = config.run_dir / "sessions"
    lease = sessions / f"{os.getpid()}.json"
    started_by_tests = sessions / "started.json"
    with locked(sessions / "lock"):
        started = up(config, only=only)
        if started:
            names = set(_read_names(started_by_tests)) | set(started)
            started_by_tests.write_text(json.dumps(sorted(names)))
        lease.write_text(
            json.dumps({"pid": os.getpid(), "start_ticks": start_ticks_of(os.getpid())})
        )
    try:
        yield config
    finally:
        with locked(sessions / "lock"):
            lease.unlink(missing_ok=True)
            if not _other_live_leases(sessions):
                down(config, only=_read_names(started_by_tests))
                started_by_tests.unlink(missing_ok=True)


def _read_names(path: Path) -> list[str]:
    try:
        return list(json.loads(path.read_text()))
    except FileNotFoundError:
        return []


def _other_live_leases(sessions: Path) -> bool:
    live = False
    for lease in sessions.glob("[0-9]*.json"):
        recorded = json.loads(lease.read_text())
        if start_ticks_of(recorded["pid"]) == recorded["start_ticks"]:
            live = True
        else:
            lease.unlink(missing_ok=True)  # a session that died without cleaning up
    return live
