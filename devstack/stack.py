"""The local stack as a whole: which servers, on which ports, and up / down / status / env.

Servers start in stages; the servers of one stage start together and the next stage starts
once all of them answer (the Kusto emulator keeps its blobs and queues in Azurite).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack import azurite, kafka
from devstack.process import (
    Running,
    Server,
    StackError,
    check_health,
    http_health,
    locked,
    port_in_use,
    read_running,
    start,
    stop,
    wait_healthy,
)

REPO = Path(__file__).resolve().parent.parent

Report = Callable[[str], None]


def _silent(_: str) -> None:
    pass


@dataclass(frozen=True)
class StackConfig:
    """Ports and the data dir of the local stack; every field has an environment override."""

    devstack_dir: Path = REPO / ".devstack"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    azurite_blob_port: int = 10000
    azurite_queue_port: int = 10001
    azurite_table_port: int = 10002
    kusto_port: int = 8080
    registry_port: int = 8081

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> StackConfig:
        """Defaults, then `DEVSTACK_*` variables, then explicit overrides (CLI flags)."""
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            variable = ENV_VARIABLES[field.name]
            if overrides.get(field.name) is not None:
                values[field.name] = overrides[field.name]
            elif variable in environ:
                values[field.name] = environ[variable]
        return cls(
            **{
                name: Path(value) if name == "devstack_dir" else int(str(value))
                for name, value in values.items()
            }
        )

    @property
    def run_dir(self) -> Path:
        return self.devstack_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.devstack_dir / "logs"

    @property
    def kafka_lib_dir(self) -> Path:
        return self.devstack_dir / "lib" / "kafka"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def kusto_url(self) -> str:
        return f"http://127.0.0.1:{self.kusto_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def storage_connection_string(self) -> str:
        return azurite.connection_string(
            self.azurite_blob_port, self.azurite_queue_port, self.azurite_table_port
        )


ENV_VARIABLES: Mapping[str, str] = {
    "devstack_dir": "DEVSTACK_DIR",
    "kafka_port": "DEVSTACK_KAFKA_PORT",
    "kafka_controller_port": "DEVSTACK_KAFKA_CONTROLLER_PORT",
    "azurite_blob_port": "DEVSTACK_AZURITE_BLOB_PORT",
    "azurite_queue_port": "DEVSTACK_AZURITE_QUEUE_PORT",
    "azurite_table_port": "DEVSTACK_AZURITE_TABLE_PORT",
    "kusto_port": "DEVSTACK_KUSTO_PORT",
    "registry_port": "DEVSTACK_REGISTRY_PORT",
}


def stages(config: StackConfig) -> list[list[Server]]:
    """Every server of the stack, grouped by start order."""
    logs = config.log_dir
    kafka_server = kafka.kafka_server(
        config.devstack_dir / "kafka",
        config.kafka_lib_dir,
        logs / "kafka.log",
        config.kafka_port,
        config.kafka_controller_port,
    )
    azurite_server = azurite.azurite_server(
        config.devstack_dir / "azurite",
        logs / "azurite.log",
        config.azurite_blob_port,
        config.azurite_queue_port,
        config.azurite_table_port,
    )
    registry = python_server(
        "schema-registry",
        "devstack.schema_registry",
        config.devstack_dir / "registry",
        [],
        config.registry_port,
        "/subjects",
        logs / "schema-registry.log",
    )
    kusto = python_server(
        "kusto-emulator",
        "devstack.kusto_emulator",
        config.devstack_dir / "kusto",
        ["--storage-connection-string", config.storage_connection_string],
        config.kusto_port,
        "/emulator/health",
        logs / "kusto-emulator.log",
    )
    # The registry needs nothing else, so it starts with the first stage.
    return [[kafka_server, azurite_server, registry], [kusto]]


def python_server(
    name: str,
    module: str,
    data_dir: Path,
    arguments: list[str],
    port: int,
    health_path: str,
    log_file: Path,
) -> Server:
    """One of the project's own HTTP servers:
    `python -m module --host 127.0.0.1 --port P --data-dir D [arguments]`."""
    return Server(
        name=name,
        command=[
            sys.executable,
            "-m",
            module,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *arguments,
        ],
        ports={"http": port},
        health=http_health(f"http://127.0.0.1:{port}{health_path}"),
        log_file=log_file,
        data_dir=data_dir,
        stop_timeout=10.0,
    )


def server_names(config: StackConfig) -> list[str]:
    return [server.name for stage in stages(config) for server in stage]


def _selected(config: StackConfig, only: Collection[str] | None) -> list[list[Server]]:
    known = server_names(config)
    unknown = sorted(set(only or ()) - set(known))
    if unknown:
        raise StackError(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [
        [server for server in stage if only is None or server.name in only]
        for stage in stages(config)
    ]
    return [stage for stage in chosen if stage]


def fetch(
    config: StackConfig, only: Collection[str] | None = None, report: Report = _silent
) -> None:
    """Download what the servers need (Kafka jars, Azurite) unless it is there already."""
    names = {server.name for stage in _selected(config, only) for server in stage}
    if "kafka" in names and kafka.fetch_jars(config.kafka_lib_dir):
        report(f"kafka: jars and class archive ready in {config.kafka_lib_dir}")
    if "azurite" in names and azurite.install():
        report(f"azurite: installed into {azurite.ENTRY_POINT.parents[2]}")


def up(
    config: StackConfig,
    fresh: bool = False,
    only: Collection[str] | None = None,
    report: Report = _silent,
) -> list[str]:
    """Start every (selected) server not running yet and wait until each answers.

    Idempotent: a server already running and healthy is left alone. Returns the names of the
    servers this call started. On failure the server at fault is stopped again and a
    StackError names it and its log file.
    """
    with locked(config.run_dir / "stack.lock"):
        return _up(config, fresh, only, report)


def _up(
    config: StackConfig, fresh: bool, only: Collection[str] | None, report: Report
) -> list[str]:
    selected = _selected(config, only)
    fetch(config, only, report)
    if fresh:
        for stage in reversed(selected):
            for server in stage:
                stop(config.run_dir, server.name, server.stop_timeout)
                shutil.rmtree(server.data_dir, ignore_errors=True)
                report(f"{server.name}: data wiped")
    started: list[Server] = []
    try:
        for stage in selected:
            _start_stage(config, stage, started, report)
    except StackError:
        # Leave things as they were: a half-started stack only confuses the next `up`.
        for server in reversed(started):
            stop(config.run_dir, server.name, server.stop_timeout)
        raise
    return [server.name for server in started]


def _start_stage(
    config: StackConfig, stage: list[Server], started: list[Server], report: Report
) -> None:
    """Start the stage's servers together, then wait for each; appends to `started`."""
    waiting: list[tuple[Server, Running]] = []
    for server in stage:
        running = read_running(config.run_dir, server.name)
        if running is None:
            running = start(server, config.run_dir)
            started.append(server)
            waiting.append((server, running))
        elif check_health(server) is None:
            report(f"{server.name}: already running (pid {running.pid})")
        else:
            waiting.append((server, running))  # started earlier and still starting
    for server, running in waiting:
        try:
            wait_healthy(server, running)
        except StackError:
            stop(config.run_dir, server.name, server.stop_timeout)
            raise
        report(f"{server.name}: healthy (pid {running.pid}, {_ports(server.ports)})")


def down(
    config: StackConfig, only: Collection[str] | None = None, report: Report = _silent
) -> list[str]:
    """Stop the (selected) servers this stack started, last stage first. Returns their names."""
    stopped: list[str] = []
    with locked(config.run_dir / "stack.lock"):
        for stage in reversed(_selected(config, only)):
            for server in stage:
                if stop(config.run_dir, server.name, server.stop_timeout):
                    stopped.append(server.name)
                    report(f"{server.name}: stopped")
    return stopped


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int | None
    ports: Mapping[str, int]
    healthy: bool
    detail: str
    log_file: Path


def status(config: StackConfig) -> list[ServerStatus]:
    """Each server: its pid (if running), ports and whether it answers right now."""
    result: list[ServerStatus] = []
    for stage in stages(config):
        for server in stage:
            running = read_running(config.run_dir, server.name)
            if running is None:
                taken = [port for port in server.ports.values() if port_in_use(port)]
                detail = (
                    f"stopped; port {taken[0]} is held by another process" if taken else "stopped"
                )
                result.append(
                    ServerStatus(server.name, None, server.ports, False, detail, server.log_file)
                )
                continue
            reason = check_health(server)
            result.append(
                ServerStatus(
                    server.name,
                    running.pid,
                    server.ports,
                    reason is None,
                    "healthy" if reason is None else f"unhealthy: {reason}",
                    server.log_file,
                )
            )
    return result


def env(config: StackConfig) -> dict[str, str]:
    """The settings a client of the stack needs, by environment variable name."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": config.bootstrap_servers,
        "KUSTO_URL": config.kusto_url,
        "AZURE_STORAGE_CONNECTION_STRING": config.storage_connection_string,
        "SCHEMA_REGISTRY_URL": config.registry_url,
    }


def _ports(ports: Mapping[str, int]) -> str:
    return ", ".join(f"{label} {port}" for label, port in ports.items())
