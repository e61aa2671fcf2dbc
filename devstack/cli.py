"""`kusto-sink devstack up|down|status|env|fetch`: the local stack from the command line."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from devstack import stack
from devstack.process import StackError

F = TypeVar("F", bound=Callable[..., Any])


def _stack_options(command: F) -> F:
    """Add one flag per StackConfig field (`--kafka-port`, `--devstack-dir`, ...)."""
    for field in reversed(dataclasses.fields(stack.StackConfig)):
        variable = stack.ENV_VARIABLES[field.name]
        is_dir = field.name == "devstack_dir"
        command = click.option(
            "--" + field.name.replace("_", "-"),
            field.name,
            type=click.Path(file_okay=False, path_type=Path)
            if is_dir
            else click.IntRange(1, 65535),
            metavar="DIR" if is_dir else "PORT",
            default=None,
            help=f"[env {variable}; default {field.default}]",
        )(command)
    return command


def _config(options: dict[str, Any]) -> stack.StackConfig:
    return stack.StackConfig.from_env(**options)


def _only(values: tuple[str, ...]) -> list[str] | None:
    names = [name for value in values for name in value.split(",") if name]
    return names or None


@click.group()
def devstack() -> None:
    """The local stack: Kafka, Azurite, the Kusto emulator and the schema registry."""


@devstack.command()
@click.option("--fresh", is_flag=True, help="Stop the servers and wipe their data first.")
@click.option("--only", multiple=True, metavar="NAME", help="Start only these servers.")
@_stack_options
def up(fresh: bool, only: tuple[str, ...], **options: Any) -> None:
    """Start the servers that are not running and wait until each answers."""
    config = _config(options)
    try:
        stack.up(config, fresh=fresh, only=_only(only), report=click.echo)
    except StackError as error:
        raise click.ClickException(str(error)) from error


@devstack.command()
@click.option("--only", multiple=True, metavar="NAME", help="Stop only these servers.")
@_stack_options
def down(only: tuple[str, ...], **options: Any) -> None:
    """Stop the servers this stack started (SIGTERM, then SIGKILL after a timeout)."""
    stopped = stack.down(_config(options), only=_only(only), report=click.echo)
    if not stopped:
        click.echo("nothing of ours was running")


@devstack.command()
@_stack_options
def status(**options: Any) -> None:
    """Show each server's pid, ports and health. Exit status 1 unless all are healthy."""
    statuses = stack.status(_config(options))
    for server in statuses:
        ports = ",".join(str(port) for port in server.ports.values())
        pid = str(server.pid) if server.pid is not None else "-"
        click.echo(f"{server.name:<16} pid {pid:<8} ports {ports:<18} {server.detail}")
    if not all(server.healthy for server in statuses):
        raise SystemExit(1)


@devstack.command()
@click.option("--export", "export", is_flag=True, help="Prefix each line with `export `.")
@_stack_options
def env(export: bool, **options: Any) -> None:
    """Print KEY=VALUE lines for `eval`: bootstrap servers, Kusto URL, storage, registry."""
    prefix = "export " if export else ""
    for key, value in stack.env(_config(options)).items():
        click.echo(f"{prefix}{key}={shlex.quote(value)}")


@devstack.command()
@click.option("--only", multiple=True, metavar="NAME", help="Fetch only for these servers.")
@_stack_options
def fetch(only: tuple[str, ...], **options: Any) -> None:
    """Download Kafka's jars (Maven) and Azurite (npm) unless they are there already."""
    try:
        stack.fetch(_config(options), only=_only(only), report=click.echo)
    except StackError as error:
        raise click.ClickException(str(error)) from error


@devstack.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--rate", default=200.0, show_default=True, help="Demo events a second per topic.")
@_stack_options
def demo(port: int, rate: float, **options: Any) -> None:
    """Start the stack and the demo's producer, then `dagster dev` until Ctrl-C.

    The sink is the demo's (devstack/demo.yaml: JSON, CSV and Avro topics into three Kusto
    tables) unless KUSTO_SINK_CONFIG names another settings file.

    Stops on Ctrl-C what it started: dagster dev (which shuts down on SIGINT) and the
    servers that were not running before.
    """
    config = _config(options)
    # Ctrl-C, and a SIGTERM (a supervisor, a CI timeout), stop the demo; set explicitly since
    # a parent may have left SIGINT ignored, which dagster dev would inherit.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        started = stack.up(config, report=click.echo)
    except StackError as error:
        raise click.ClickException(str(error)) from error
    from devstack import demo as demo_data  # the demo's Kafka/Kusto clients, only when needed

    producer = None
    try:
        if os.environ.get("KUSTO_SINK_CONFIG"):
            sink_env = {"KUSTO_SINK_CONFIG": os.environ["KUSTO_SINK_CONFIG"]}
        else:
            # The demo's own sink: topics, tables and mappings made now, events produced by a
            # child process for as long as the demo runs.
            demo_data.prepare(config)
            sink_env = demo_data.environment(config)
            producer = subprocess.Popen(
                [sys.executable, "-m", "devstack.demo", "--rate", str(rate)],
                env={**os.environ, **sink_env},
                start_new_session=True,
            )
            click.echo(f"producing ~{rate:g} events/s to {', '.join(demo_data.TOPICS)}")
        exit_code = dagster_dev(port, sink_env)
    finally:
        if producer is not None:
            producer.terminate()
            producer.wait(timeout=30)
        stack.down(config, only=started, report=click.echo)
    raise SystemExit(exit_code)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def dagster_dev(port: int, extra_env: dict[str, str]) -> int:
    """Run `dagster dev` with DAGSTER_HOME under the project until it ends or Ctrl-C.

    It runs in its own process group, webserver, daemon and code servers included: on Ctrl-C
    we send it SIGINT (it ignores SIGTERM), wait for its ~15 s shutdown, then end whatever of
    the group is left.
    """
    home = stack.REPO / "dagster_home"
    instance_settings = home / "dagster.yaml"
    if not instance_settings.exists():
        # Dagster reads $DAGSTER_HOME/dagster.yaml; the project's copy lives at the top level.
        instance_settings.symlink_to(Path("..") / "dagster.yaml")
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "--workspace",
        str(stack.REPO / "workspace.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # From the repository root, like a developer's own `dagster dev` (relative paths in the
    # definitions resolve there). Dagster warns that the dagster.yaml it sees there is not
    # DAGSTER_HOME's: it is, through the link above.
    process = subprocess.Popen(
        command,
        cwd=stack.REPO,
        env={**os.environ, **extra_env, "DAGSTER_HOME": str(home)},
        start_new_session=True,
    )
    try:
        return process.wait()
    except KeyboardInterrupt:
        click.echo("stopping dagster dev (takes ~15 s)...")
        os.killpg(process.pid, signal.SIGINT)
        try:
            return process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
