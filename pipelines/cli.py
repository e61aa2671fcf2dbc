"""The ``kusto-sink`` command line: validate, plan, drain, and the commands of other modules.

Every command imports what it needs when it runs: the sink's clients pull in the Azure and
Kafka SDKs, Dagster and pyarrow, the devstack its own servers' clients, and `kusto-sink
drain` should not wait for the imports of `kusto-sink devstack` (or the other way round).
"""

from __future__ import annotations

import gc
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipelines.cli_options import config_option, dagster_instance
from pipelines.config import config_path, load_settings
from pipelines.errors import ConfigError, SinkError

if TYPE_CHECKING:
    import dagster as dg

    from pipelines.runtime import SinkRuntime

# Commands defined elsewhere: name -> "module:attribute", imported when invoked.
LAZY_COMMANDS = {
    "import-config": "pipelines.config.command:import_config",
    "devstack": "devstack.cli:devstack",
    "bench": "bench.cli:bench",
    "backfill": "pipelines.backfill_cli:backfill",
    "status": "pipelines.status_cli:status",
    "metrics": "pipelines.prometheus:metrics",
}


class LazyGroup(click.Group):
    """A group whose LAZY_COMMANDS are imported only when they are run or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = LAZY_COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup)
def main() -> None:
    """Kafka → Azure Data Explorer sink, orchestrated by Dagster."""


def _runtime(config_file: Path | None) -> tuple[str, SinkRuntime]:
    from pipelines.runtime import SinkRuntime

    try:
        path = str(config_path(config_file))
        return path, SinkRuntime(load_settings(path))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@config_option
@click.option("--reconcile", is_flag=True, help="Also check Kusto's rows of every batch delivered")
def validate(config_file: Path | None, reconcile: bool) -> None:
    """Check the settings, then that Kafka, its topics and every Kusto table answer."""
    from pipelines.preflight import preflight

    _, runtime = _runtime(config_file)
    with runtime:
        problems = preflight(runtime)
    if problems:
        raise click.ClickException(str(ConfigError(problems)))
    settings = runtime.settings
    click.echo(
        f"ok: sink {settings.name}, group {settings.group_id}, "
        f"{len(settings.mappings)} mapping(s), Kafka and Kusto reachable"
    )
    if reconcile:
        from pipelines.reconcile_cli import reconcile_or_fail

        reconcile_or_fail(settings)


@main.command()
@config_option
def plan(config_file: Path | None) -> None:
    """Show each partition's committed offset, high watermark, lag and planned ranges."""
    _, runtime = _runtime(config_file)
    reset = runtime.settings.kafka.auto_offset_reset
    with runtime:
        try:
            states = runtime.partition_states()
        except SinkError as error:
            raise click.ClickException(str(error)) from None
        ranges = runtime.plan(states)
    by_partition: dict[str, list[str]] = {}
    for rng in ranges:
        by_partition.setdefault(rng.key, []).append(f"{rng.start}-{rng.end}")
    click.echo(f"{'partition':<32} {'committed':>12} {'high':>12} {'lag':>10}  planned ranges")
    for tp, state in sorted(states.items()):
        committed = "-" if state.committed is None else str(state.committed)
        planned = ", ".join(by_partition.get(str(tp), [])) or "-"
        click.echo(
            f"{str(tp):<32} {committed:>12} {state.high:>12} {state.lag(reset):>10}  {planned}"
        )
    total = sum(s.lag(reset) for s in states.values())
    click.echo(f"total lag {total} records in {len(ranges)} range(s)")


@main.command()
@config_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Steps a run deals its ranges into: 1 delivers them in the drain process, more "
    "in that many step processes at once",
)
def drain(config_file: Path | None, workers: int) -> None:
    """Launch delivery runs through the Dagster instance until no partition lags."""

    from pipelines.drain import drain as drain_all

    path, runtime = _runtime(config_file)

    def report(ranges: list, run: dg.DagsterRun) -> None:
        click.echo(f"run {run.run_id[:8]} {run.status.value}: {', '.join(map(str, ranges))}")

    with runtime, dagster_instance() as instance:
        try:
            progress = drain_all(path, runtime, instance, max_concurrent=workers, on_run=report)
        except (RuntimeError, SinkError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"drained: {progress.records} offsets in {progress.runs} run(s); lag is 0")


def entry() -> None:
    """The ``kusto-sink`` console script."""
    try:
        main()
    finally:
        # What the command imported and built (Dagster, the SDKs) lives until the process
        # ends: frozen, the collector's last pass at exit skips it. After a drain that pass
        # took 1.0-1.3 s of CPU, a tenth of a 1 M record drain.
        gc.freeze()


if __name__ == "__main__":
    entry()
