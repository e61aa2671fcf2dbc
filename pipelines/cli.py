"""The ``kusto-sink`` command line: validate, plan, drain, import-config, devstack."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import dagster as dg

from bench.cli import bench
from devstack.cli import devstack
from pipelines.backfill_cli import backfill
from pipelines.config import CONFIG_ENV, config_path, import_config, load_settings
from pipelines.errors import ConfigError, SinkError
from pipelines.prometheus import metrics
from pipelines.runtime import SinkRuntime
from pipelines.status_cli import status

config_option = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Settings: YAML, or a Kafka Connect .properties/.json file (default: ${CONFIG_ENV})",
)


@click.group()
def main() -> None:
    """Kafka → Azure Data Explorer sink, orchestrated by Dagster."""


def _runtime(config_file: Path | None) -> tuple[str, SinkRuntime]:
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
    help="Ranges a run delivers at once: 1 in the drain process, more in step processes",
)
def drain(config_file: Path | None, workers: int) -> None:
    """Launch delivery runs through the Dagster instance until no partition lags."""
    from pipelines.drain import drain as drain_all

    path, runtime = _runtime(config_file)
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    def report(ranges: list, run: dg.DagsterRun) -> None:
        click.echo(f"run {run.run_id[:8]} {run.status.value}: {', '.join(map(str, ranges))}")

    with runtime, dg.DagsterInstance.get() as instance:
        try:
            progress = drain_all(path, runtime, instance, max_concurrent=workers, on_run=report)
        except (RuntimeError, SinkError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"drained: {progress.records} offsets in {progress.runs} run(s); lag is 0")


main.add_command(import_config)
main.add_command(devstack)
main.add_command(bench)
main.add_command(backfill)
main.add_command(status)
main.add_command(metrics)

if __name__ == "__main__":
    sys.exit(main())
