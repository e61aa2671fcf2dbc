"""Starting, watching and stopping one server process (no stack needed)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from devstack.process import (
    Server,
    StackError,
    free_port,
    http_health,
    read_running,
    start,
    stop,
    wait_healthy,
)
from devstack.stack import StackConfig


def python_server(tmp_path: Path, code: str, **ports: int) -> Server:
    port = ports.get("http", 0)
    return Server(
        name="toy",
        command=[sys.executable, "-c", code],
        ports=ports,
        health=http_health(f"http://127.0.0.1:{port}/") if port else lambda: None,
        log_file=tmp_path / "logs" / "toy.log",
        data_dir=tmp_path / "toy",
        start_timeout=20,
    )


def test_config_takes_flags_over_environment_over_defaults(tmp_path: Path) -> None:
    environ = {"DEVSTACK_KAFKA_PORT": "19092", "DEVSTACK_DIR": str(tmp_path)}

    config = StackConfig.from_env(environ, kafka_port=29092, kusto_port=None)

    assert config.kafka_port == 29092
    assert config.kusto_port == 8080
    assert config.devstack_dir == tmp_path
    assert config.bootstrap_servers == "127.0.0.1:29092"


def test_start_wait_and_stop_gracefully(tmp_path: Path) -> None:
    port = free_port()
    server = python_server(
        tmp_path,
        f"import http.server as h; h.test(h.SimpleHTTPRequestHandler, port={port}, "
        "bind='127.0.0.1')",
        http=port,
    )
    running = start(server, tmp_path / "run")
    wait_healthy(server, running)

    assert read_running(tmp_path / "run", "toy") == running
    assert stop(tmp_path / "run", "toy", timeout=10)
    assert read_running(tmp_path / "run", "toy") is None
    assert not stop(tmp_path / "run", "toy", timeout=10), "second stop finds nothing"


def test_stop_forces_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    server = python_server(tmp_path, code)
    start(server, tmp_path / "run")
    time.sleep(0.5)  # let it install its handler

    began = time.monotonic()
    assert stop(tmp_path / "run", "toy", timeout=1)

    assert time.monotonic() - began < 5
    assert read_running(tmp_path / "run", "toy") is None


def test_server_that_dies_names_itself_and_its_log(tmp_path: Path) -> None:
    server = python_server(
        tmp_path, "import sys; print('bad config'); sys.exit(3)", http=free_port()
    )
    running = start(server, tmp_path / "run")

    with pytest.raises(StackError) as raised:
        wait_healthy(server, running)

    message = str(raised.value)
    assert "toy exited during start-up (exit code 3)" in message
    assert str(server.log_file) in message
    assert "bad config" in message


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "toy.json").write_text(json.dumps({"pid": 1, "start_ticks": -1, "ports": {}}))

    assert read_running(run_dir, "toy") is None
    assert not (run_dir / "toy.json").exists()
