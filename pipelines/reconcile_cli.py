"""``kusto-sink validate --reconcile``: the reconciliation check, from the terminal."""

from __future__ import annotations

import click

from pipelines.cli_options import dagster_instance
from pipelines.config import SinkSettings
from pipelines.definitions import asset_specs
from pipelines.reconcile_job import reconcile_table, record_evaluation
from pipelines.runtime import SinkRuntime


def reconcile_or_fail(settings: SinkSettings) -> None:
    """Reconcile every table of the sink with the batches in the Dagster instance
    ($DAGSTER_HOME); print one line per table, fail if any does not match.

    Each result is recorded as the table's check evaluation, so the UI shows it too.
    """
    tables = [a.key for a in asset_specs(settings) if a.key.path[0] == "kusto"]
    failed = []
    with SinkRuntime(settings) as runtime, dagster_instance() as instance:
        for key in tables:
            result = reconcile_table(runtime, instance, key)
            record_evaluation(instance, key, result)
            click.echo(f"{'ok' if result.passed else 'MISMATCH'}: {result.summary()}")
            if not result.passed:
                failed.append(result.table)
    if failed:
        raise click.ClickException(f"reconciliation failed for {', '.join(failed)}")
