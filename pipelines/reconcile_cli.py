"""``kusto-sink validate --reconcile``: the reconciliation check, from the terminal."""

from __future__ import annotations

import os
from pathlib import Path

import click
import dagster as dg

from pipelines.config import SinkSettings
from pipelines.definitions import asset_specs
from pipelines.reconcile_job import reconcile_table, record_evaluation
from pipelines.runtime import SinkRuntime


def reconcile_or_fail(settings: SinkSettings) -> None:
    """Reconcile every table of the sink with the batches in the Dagster instance
    ($DAGSTER_HOME); print one line per table, fail if any does not match.

    Each result is recorded as the table's check evaluation, so the UI shows it too.
    """
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    tables = [a.key for a in asset_specs(settings) if a.key.path[0] == "kusto"]
    failed = []
    with SinkRuntime(settings) as runtime, dg.DagsterInstance.get() as instance:
        for key in tables:
            result = reconcile_table(runtime, instance, key)
            record_evaluation(instance, key, result)
            click.echo(f"{'ok' if result.passed else 'MISMATCH'}: {result.summary()}")
            if not result.passed:
                failed.append(result.table)
    if failed:
        raise click.ClickException(f"reconciliation failed for {', '.join(failed)}")
