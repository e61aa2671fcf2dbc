"""Backfill runs through the Dagster instance: one run per planned chunk, in order.

Like drain's (:func:`pipelines.drain.run_job`), each chunk shows in the Dagster UI as its
own run, with its steps, logs and batches, and can be re-executed there on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from pipelines.backfill import BackfillPlan
from pipelines.backfill_job import JOB_NAME, backfill_run_config, backfill_run_tags
from pipelines.drain import run_job
from pipelines.jobs import executor_config
from pipelines.plan import OffsetRange


@dataclass
class BackfillProgress:
    plan: BackfillPlan
    runs: list[str] = field(default_factory=list)
    rows: int = 0
    batches: int = 0


def run_backfill(
    config_path: str,
    sink_name: str,
    instance: dg.DagsterInstance,
    plan: BackfillPlan,
    table: str | None,
    *,
    on_run: Callable[[OffsetRange, dg.DagsterRun, int], None] = lambda rng, run, rows: None,
) -> BackfillProgress:
    """Run the chunks of ``plan`` (see :func:`pipelines.backfill.plan_backfill`) one by one.

    A failed run stops the backfill with an error naming its chunk; chunks already run stay
    loaded, and running the same backfill again loads only what is still missing.
    """
    progress = BackfillProgress(plan)
    for rng in plan.ranges:
        with run_job(
            config_path,
            JOB_NAME,
            instance,
            # One chunk a run, one step at a time: no step processes to start.
            {**backfill_run_config(rng, table), **executor_config(1)},
            backfill_run_tags(sink_name, rng, table),
            doing=f"backfilling {rng}",
            then=", or run the same backfill again to load what is still missing",
        ) as result:
            batches = result.asset_materializations_for_node("backfill_chunk")
            rows = sum(int(str(m.metadata["rows"].value)) for m in batches)
            progress.runs.append(result.run_id)
            progress.rows += rows
            progress.batches += len(batches)
            on_run(rng, result.dagster_run, rows)
    return progress
