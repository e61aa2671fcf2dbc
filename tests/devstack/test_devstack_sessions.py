"""Test sessions sharing a stack: the last one out stops what test sessions started."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devstack.process import free_port, port_in_use, start_ticks_of
from devstack.sessions import shared_stack
from devstack.stack import StackConfig, down, up


def test_last_session_stops_what_sessions_started(tmp_path: Path) -> None:
    config = StackConfig(devstack_dir=tmp_path, registry_port=free_port())
    other_session = subprocess.Popen(["sleep", "60"])
    try:
        with shared_stack(config, only=["schema-registry"]):
            lease = {"pid": other_session.pid, "start_ticks": start_ticks_of(other_session.pid)}
            (config.run_dir / "sessions" / f"{other_session.pid}.json").write_text(
                json.dumps(lease)
            )
        assert port_in_use(config.registry_port), "stopped while another session used it"
    finally:
        other_session.kill()
        other_session.wait()

    with shared_stack(config, only=["schema-registry"]):
        pass

    assert not port_in_use(config.registry_port), "the last session should have stopped it"


def test_sessions_leave_servers_they_did_not_start(tmp_path: Path) -> None:
    config = StackConfig(devstack_dir=tmp_path, registry_port=free_port())
    assert up(config, only=["schema-registry"]) == ["schema-registry"]
    try:
        with shared_stack(config, only=["schema-registry"]):
            pass

        assert port_in_use(config.registry_port)
    finally:
        down(config)
