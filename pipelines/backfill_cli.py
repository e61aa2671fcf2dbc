"""``kusto-sink backfill``: read a range again into Kusto, with a progress bar."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.backfill import BackfillRequest, Position, parse_position, plan_backfill
from pipelines.cli_options import config_option, dagster_instance
from pipelines.config import config_path, load_settings
from pipelines.errors import SinkError
from pipelines.runtime import SinkRuntime


class _PositionType(click.ParamType):
    name = "offset|time"

    def convert(self, value: object, param: object, ctx: object) -> Position:
        if isinstance(value, int | float) or hasattr(value, "tzinfo"):
            return value  # type: ignore[return-value]
        try:
            return parse_position(str(value))
        except ValueError as error:
            self.fail(str(error))


def _partitions(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(p) for p in value.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: partition numbers separated by commas") from None


@click.command()
@config_option
@click.option("--topic", required=True, help="Kafka topic to read again")
@click.option("--partitions", callback=_partitions, help="e.g. 0,2 (default: all)")
@click.option("--from", "start", type=_PositionType(), required=True, help="offset or ISO time")
@click.option(
    "--to", "end", type=_PositionType(), help="offset or ISO time, exclusive (default: end of log)"
)
@click.option("--table", help="Into this table (T or db.T) instead of the configured one")
@click.option("--replace", is_flag=True, help="Load the range again and drop what Kusto held of it")
def backfill(
    config_file: Path | None,
    topic: str,
    partitions: tuple[int, ...] | None,
    start: Position,
    end: Position | None,
    table: str | None,
    replace: bool,
) -> None:
    """Read a range of a topic again into Kusto, without moving the sink's offsets.

    Offsets Kusto already holds are skipped (by their batch tags), so a backfill into the
    live table adds nothing that is there; --replace loads the range again and then drops
    the batches Kusto held of it (interrupted, run the same command again).
    Each chunk is one run in the Dagster instance ($DAGSTER_HOME).
    """
    from pipelines.backfill_runs import run_backfill

    path = str(config_path(config_file))
    request = BackfillRequest(topic, start, end, partitions, table, replace)
    try:
        with SinkRuntime(load_settings(path)) as runtime:
            plan = plan_backfill(runtime, request)
        replacing = f"; replacing {len(plan.replaced_batches)} batch(es)" if replace else ""
        click.echo(
            f"backfill {request.describe()}: {plan.offsets} offsets in {len(plan.ranges)} "
            f"run(s){replacing}"
        )
        with (
            dagster_instance() as instance,
            click.progressbar(length=plan.offsets, label="offsets", show_pos=True) as bar,
        ):
            progress = run_backfill(
                path,
                runtime.settings.name,
                instance,
                plan,
                table,
                on_run=lambda rng, run, rows: bar.update(rng.records),
            )
    except (RuntimeError, SinkError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"backfilled: {progress.rows} rows in {progress.batches} batch(es), "
        f"{len(progress.runs)} run(s)"
    )
