"""``kusto-sink status``: the numbers of the UI's plots in the terminal, and a progress bar
for every drain or backfill run in flight."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import dagster as dg

from pipelines import metrics
from pipelines.backfill_job import BACKFILL_TAG
from pipelines.cli_options import config_option, dagster_instance, settings_of
from pipelines.errors import SinkError
from pipelines.jobs import PARTITIONS_TAG, RANGE_TAG, SINK_TAG
from pipelines.runtime import SinkRuntime
from pipelines.status import SinkStatus, sink_status
from sensors.lag import IN_FLIGHT

BAR_WIDTH = 30


@dataclass(frozen=True)
class RunProgress:
    run_id: str
    what: str
    offsets_done: int
    # None when the run names times, not offsets (a backfill resolving them itself).
    offsets_total: int | None


def run_progress(instance: dg.DagsterInstance, sink_name: str) -> list[RunProgress]:
    """Drain and backfill runs of this sink that are queued or running, and how far along."""
    found = []
    for tag in (SINK_TAG, BACKFILL_TAG):
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT, tags={tag: sink_name}))
        for run in runs:
            done = 0
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records:
                materialization = record.event_log_entry.asset_materialization
                meta = materialization.metadata if materialization else {}
                if "first_offset" in meta and "last_offset" in meta:
                    done += int(str(meta["last_offset"].value)) - int(
                        str(meta["first_offset"].value)
                    )
                    done += 1
            found.append(
                RunProgress(run.run_id, _describe(run), done, _offsets_total(run.run_config))
            )
    return found


def bar(done: int, total: int | None) -> str:
    if not total:
        return f"[{'?' * BAR_WIDTH}] {done} offsets"
    filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * done // total:3d}% {done}/{total}"


def render(status: SinkStatus, runs: list[RunProgress]) -> str:
    header = (
        f"{'partition':<28} {'committed':>10} {'high':>10} {'lag':>9} {'lag bytes':>11} "
        f"{'oldest':>8} {'written':>9} {'failed':>7} {'dead':>6} {'attempts':>8} {'ok':>6} "
        f"{'errors':>6}"
    )
    lines = [header]
    for s in status.partitions:
        committed = "-" if s.committed is None else str(s.committed)
        lines.append(
            f"{str(s.topic_partition):<28} {committed:>10} {s.high:>10} {s.lag_records:>9} "
            f"{s.lag_bytes:>11} {_age(s.oldest_age_s):>8} "
            + _counters(status.totals.of(s.topic_partition))
        )
    lag = status.lag()
    lines.append(
        f"{'total':<28} {'':>10} {'':>10} {lag.records:>9} {lag.bytes:>11} "
        f"{_age(lag.oldest_age_s):>8} " + _counters(status.totals.total())
    )
    for run in runs:
        lines.append(
            f"run {run.run_id[:8]} {run.what:<40} {bar(run.offsets_done, run.offsets_total)}"
        )
    if not runs:
        lines.append("no drain or backfill run in flight")
    return "\n".join(lines)


@click.command()
@config_option
@click.option(
    "--watch",
    type=float,
    default=None,
    help="Refresh every this many seconds until no drain or backfill run is in flight",
)
def status(config_file: Path | None, watch: float | None) -> None:
    """Each partition's lag and delivery counters, and the progress of runs in flight.

    Lag bytes are estimated from a sample of the records behind; "oldest" is the age of
    the oldest record not yet delivered. Counters come from the Dagster instance
    ($DAGSTER_HOME): written, failed and dead-lettered records, ingestion attempts,
    successes and errors.
    """
    settings = settings_of(config_file)
    # Kept across refreshes: each one folds in only the deliveries recorded since the last.
    totals = metrics.Totals({})
    with dagster_instance() as instance, SinkRuntime(settings) as runtime:
        while True:
            try:
                text = render(
                    sink_status(runtime, instance, totals), run_progress(instance, settings.name)
                )
            except SinkError as error:
                raise click.ClickException(str(error)) from None
            if watch:
                click.clear()
            click.echo(text)
            if not watch or not run_progress(instance, settings.name):
                return
            time.sleep(watch)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f}s"


def _counters(c: metrics.Counters) -> str:
    return (
        f"{c.records_written:>9} {c.records_failed:>7} {c.dead_lettered:>6} "
        f"{c.ingestion_attempts:>8} {c.ingestion_successes:>6} {c.ingestion_failures:>6}"
    )


def _describe(run: dg.DagsterRun) -> str:
    if RANGE_TAG in run.tags:
        return run.tags[RANGE_TAG]
    return f"ingest {run.tags.get(PARTITIONS_TAG, '')}"


def _offsets_total(run_config: Mapping[str, Any]) -> int | None:
    ops = run_config.get("ops") or {}
    assert isinstance(ops, dict)
    if "offset_ranges" in ops:
        ranges = ops["offset_ranges"]["config"]["ranges"]
        return sum(int(r["end"]) - int(r["start"]) for r in ranges)
    config = (ops.get("plan_backfill") or {}).get("config") or {}
    if config.get("from_offset") is not None and config.get("to_offset") is not None:
        return int(config["to_offset"]) - int(config["from_offset"])
    return None
