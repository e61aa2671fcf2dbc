"""The reconciliation asset check on every ``kusto/<db>/<table>`` asset, its job and schedule.

A failed check shows on the table's asset in the UI and fails ``kusto-sink validate
--reconcile`` (see :mod:`pipelines.checks` for what is compared).

(No `from __future__ import annotations` here: Dagster reads the check's annotations.)
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from pipelines.checks import Reconciliation, current_batches, delivered_batches, reconcile
from pipelines.runtime import SinkRuntime
from resources.sink import SinkResource

if TYPE_CHECKING:  # dagster exports the class only from a private module
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

CHECK_NAME = "reconciled"
JOB_NAME = "reconcile"


def build_reconcile_checks(tables: list[dg.AssetKey]) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description="Rows tagged with each delivered batch equal the batch's records "
            "(its offsets minus dead letters)",
        )
        for key in tables
    ]

    @dg.multi_asset_check(specs=specs, name="reconcile_tables", can_subset=True)
    def reconcile_tables(
        context: dg.AssetCheckExecutionContext, sink: SinkResource
    ) -> Iterator[dg.AssetCheckResult]:
        with sink.runtime() as runtime:
            for check in sorted(context.selected_asset_check_keys, key=str):
                result = reconcile_table(runtime, context.instance, check.asset_key)
                (context.log.info if result.passed else context.log.error)(result.summary())
                yield dg.AssetCheckResult(
                    asset_key=check.asset_key,
                    check_name=CHECK_NAME,
                    passed=result.passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=result.summary(),
                    metadata=result.metadata(),
                )

    return reconcile_tables


def reconcile_table(
    runtime: SinkRuntime, instance: dg.DagsterInstance, asset_key: dg.AssetKey
) -> Reconciliation:
    """Reconcile the batches materialized on one ``kusto/<db>/<table>`` asset."""
    _, database, table = asset_key.path
    batches = current_batches(delivered_batches(instance, asset_key))
    return reconcile(runtime.query_client, database, table, batches)


def record_evaluation(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, result: Reconciliation
) -> None:
    """Record a reconciliation done outside a run (the command line) as the check's result,
    so the UI shows it like one from the reconcile job."""
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.summary(),
            metadata=result.metadata(),
        )
    )


def build_reconcile_job() -> "UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all_asset_checks(),
        description="Reconcile every delivered batch with its rows in Kusto",
    )


def build_reconcile_schedule(job: "UnresolvedAssetJobDefinition") -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="reconcile_hourly",
        job=job,
        cron_schedule="17 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Reconcile Kusto with the delivered batches every hour",
    )
