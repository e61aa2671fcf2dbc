"""Runs of the sink's jobs through the Dagster instance, launched from the command line:
``drain`` (delivery runs until no partition lags) here, backfills in
:mod:`pipelines.backfill_runs`.

Runs go through the instance (``DAGSTER_HOME``) like the sensors' runs do, so they show in
the Dagster UI with their steps, logs and batch materializations, and can be re-executed
there on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.jobs import run_config, run_tags
from pipelines.plan import OffsetRange
from pipelines.runtime import SinkRuntime
from sensors.lag import group_ranges, in_flight_partitions

BUSY_POLL_S = 2.0
# The terminal shows what each step did; Dagster's own events (step started, input
# loaded, ...) stay in the run's event log in the UI.
CONSOLE_INFO: dict[str, object] = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def job_for(config_path: str, job_name: str) -> dg.JobDefinition:
    """A job of one settings file; module-level so run workers can rebuild it."""
    return build_definitions(config_path).get_job_def(job_name)


@contextmanager
def run_job(
    config_path: str,
    job_name: str,
    instance: dg.DagsterInstance,
    run_config: dict[str, object],
    tags: dict[str, str],
    *,
    doing: str,
    then: str = "",
) -> Iterator[dg.ExecuteJobResult]:
    """Execute one run of ``job_name`` through ``instance``, its result open in the block.

    A failed run raises once the block is done, naming the run and what it was ``doing``
    (and what to do ``then``).
    """
    job = dg.build_reconstructable_job(
        __name__, "job_for", reconstructable_args=(config_path, job_name)
    )
    began = time.monotonic()
    with dg.execute_job(
        job, instance=instance, run_config={**run_config, **CONSOLE_INFO}, tags=tags
    ) as result:
        yield result
    if not result.success:
        raise RuntimeError(
            f"run {result.run_id} {doing} failed after {time.monotonic() - began:.0f}s; "
            f"see its logs in the Dagster UI{then}"
        )


@dataclass
class DrainProgress:
    runs: int = 0
    records: int = 0


def drain(
    config_path: str,
    runtime: SinkRuntime,
    instance: dg.DagsterInstance,
    *,
    max_runs: int = 1000,
    max_concurrent: int = 1,
    on_run: Callable[[list[OffsetRange], dg.DagsterRun], None] = lambda ranges, run: None,
) -> DrainProgress:
    """Run the delivery job until every partition's committed offset is its high watermark.

    A failed run ends the drain with an error; its ranges stay uncommitted for the next
    drain or sensor tick. ``max_concurrent`` is how many ranges of a run are delivered at
    once: 1 delivers them one after another in this process, more start that many step
    processes at a time.
    """
    progress = DrainProgress()
    while progress.runs < max_runs:
        # Only runs already running: queued runs and retries wait for a daemon that may
        # not be running (the compare-and-set commit settles any later overlap).
        busy = in_flight_partitions(instance, runtime.settings.name, daemon=False)
        planned = runtime.plan()
        if not planned:
            return progress
        ranges = [r for r in planned if r.key not in busy]
        if not ranges:
            # Runs the sensors launched cover what lags: wait for them rather than race them.
            time.sleep(BUSY_POLL_S)
            continue
        for group in group_ranges(ranges):
            with run_job(
                config_path,
                "deliver_ranges",
                instance,
                run_config(group, max_concurrent=max_concurrent),
                run_tags(runtime.settings.name, group),
                doing=f"delivering {', '.join(map(str, group))}",
            ) as result:
                progress.runs += 1
                on_run(group, result.dagster_run)
            progress.records += sum(r.records for r in group)
    return progress
