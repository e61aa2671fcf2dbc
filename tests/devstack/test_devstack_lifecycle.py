"""`kusto-sink devstack` as a user drives it: idempotent up, clear errors, env for a shell."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from devstack.cli import devstack
from devstack.process import StackError, free_port, port_in_use
from devstack.stack import StackConfig, status, up

pytestmark = pytest.mark.stack

KUSTO_SINK = Path(sys.executable).with_name("kusto-sink")


@pytest.fixture
def side_stack(tmp_path: Path) -> Iterator[StackConfig]:
    """A second stack config in a temp dir on free ports, for servers that start quickly."""
    config = StackConfig(
        devstack_dir=tmp_path / "devstack", registry_port=free_port(), kusto_port=free_port()
    )
    yield config
    CliRunner().invoke(devstack, ["down", "--devstack-dir", str(config.devstack_dir)])


def test_up_twice_is_harmless(stack: StackConfig) -> None:
    pids_before = {server.name: server.pid for server in status(stack)}

    assert up(stack) == []

    after = status(stack)
    assert all(server.healthy for server in after), after
    assert {server.name: server.pid for server in after} == pids_before


def test_status_shows_every_server_healthy(stack: StackConfig) -> None:
    result = CliRunner().invoke(devstack, ["status"])

    assert result.exit_code == 0, result.output
    for name in ("kafka", "azurite", "kusto-emulator", "schema-registry"):
        assert name in result.output
    assert "healthy" in result.output


def test_env_evaluates_in_a_shell(stack: StackConfig) -> None:
    script = (
        f'eval "$({KUSTO_SINK} devstack env)"; '
        'printf "%s\\n" "$KAFKA_BOOTSTRAP_SERVERS" "$KUSTO_URL" '
        '"$AZURE_STORAGE_CONNECTION_STRING" "$SCHEMA_REGISTRY_URL"'
    )
    lines = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()

    assert lines == [
        stack.bootstrap_servers,
        stack.kusto_url,
        stack.storage_connection_string,
        stack.registry_url,
    ]
    assert f"BlobEndpoint=http://127.0.0.1:{stack.azurite_blob_port}/devstoreaccount1" in lines[2]


def test_taken_port_gives_a_clear_error(side_stack: StackConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", side_stack.registry_port))
        squatter.listen()

        result = CliRunner().invoke(
            devstack,
            [
                "up",
                "--only",
                "schema-registry",
                "--devstack-dir",
                str(side_stack.devstack_dir),
                "--registry-port",
                str(side_stack.registry_port),
            ],
        )

    assert result.exit_code == 1
    assert "schema-registry cannot start" in result.output
    assert f"port {side_stack.registry_port}" in result.output
    assert str(side_stack.log_dir / "schema-registry.log") in result.output


def test_down_stops_what_up_started(side_stack: StackConfig) -> None:
    options = ["--devstack-dir", str(side_stack.devstack_dir)]
    options += ["--registry-port", str(side_stack.registry_port)]
    runner = CliRunner()

    started = runner.invoke(devstack, ["up", "--only", "schema-registry", *options])
    assert started.exit_code == 0, started.output
    assert port_in_use(side_stack.registry_port)

    stopped = runner.invoke(devstack, ["down", *options])

    assert stopped.exit_code == 0, stopped.output
    assert "schema-registry: stopped" in stopped.output
    assert not port_in_use(side_stack.registry_port)
    assert not any((side_stack.run_dir).glob("*.json")), "pid files left behind"


def test_fresh_wipes_data(side_stack: StackConfig) -> None:
    marker = side_stack.devstack_dir / "registry" / "left-over"
    marker.parent.mkdir(parents=True)
    marker.write_text("old")

    up(side_stack, fresh=True, only=["schema-registry"])

    assert not marker.exists()


def test_failed_up_stops_what_it_started(side_stack: StackConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", side_stack.kusto_port))
        squatter.listen()

        with pytest.raises(StackError, match="kusto-emulator cannot start"):
            up(side_stack, only=["schema-registry", "kusto-emulator"])

    assert not port_in_use(side_stack.registry_port), "schema-registry left running"
    assert not any(side_stack.run_dir.glob("*.json")), "pid files left behind"
