"""Backfill runs through the Dagster instance: one run per planned chunk, in order.

Like :mod:`pipelines.drain`, runs go through the instance (``DAGSTER_HOME``), so each
chunk shows in the Dagster UI as its own run, with its steps, logs and batches, and can be
re-executed there on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from pipelines.backfill import BackfillPlan
from pipelines.backfill_job import JOB_NAME, backfill_run_config, backfill_run_tags
from pipelines.definitions import build_definitions
from pipelines.plan import OffsetRange

IN_PROCESS: dict[str, object] = {"execution": {"config": {"in_process": {}}}}


def backfill_job_for(config_path: str) -> dg.JobDefinition:
    """The backfill job of one settings file; module-level so run workers can rebuild it."""
    return build_definitions(config_path).get_job_def(JOB_NAME)


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
    job = dg.build_reconstructable_job(
        __name__, "backfill_job_for", reconstructable_args=(config_path,)
    )
    for rng in plan.ranges:
        with dg.execute_job(
            job,
            instance=instance,
            # One chunk a run, one step at a time: no step processes to start.
            run_config={**backfill_run_config(rng, table), **IN_PROCESS},
            tags=backfill_run_tags(sink_name, rng, table),
        ) as result:
            batches = result.asset_materializations_for_node("backfill_chunk")
            rows = sum(int(str(m.metadata["rows"].value)) for m in batches)
            progress.runs.append(result.run_id)
            progress.rows += rows
            progress.batches += len(batches)
            on_run(rng, result.dagster_run, rows)
            if not result.success:
                raise RuntimeError(
                    f"backfill run {result.run_id} of {rng} failed; see its logs in the Dagster "
                    "UI, or run the same backfill again to load what is still missing"
                )
    return progress
