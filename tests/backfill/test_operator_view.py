"""What an operator sees: the reconciliation check (in the UI's terms and from the CLI), and
the status sensor's observations of lag and counters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import dagster as dg
import pytest
from backfill_data import RECORDS, create_table
from click.testing import CliRunner
from confluent_kafka import Producer

from pipelines.backfill_job import backfill_run_tags
from pipelines.definitions import build_definitions
from pipelines.extents import batch_extents, drop_extents
from pipelines.jobs import kusto_asset_key, run_config
from pipelines.metrics import kafka_asset_key
from pipelines.plan import OffsetRange
from pipelines.reconcile_job import CHECK_NAME
from pipelines.status_cli import status

pytestmark = pytest.mark.stack


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A DAGSTER_HOME, as `kusto-sink` and `dagster dev` use it."""
    path = tmp_path / "dagster_home"
    path.mkdir()
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


def instance_at(home) -> dg.DagsterInstance:
    return dg.DagsterInstance.get()


def check_results(defs, instance) -> dict[dg.AssetKey, dg.AssetCheckEvaluation]:
    result = defs.resolve_job_def("reconcile").execute_in_process(
        instance=instance, resources=defs.resources, raise_on_error=False
    )
    return {e.asset_key: e for e in result.get_asset_check_evaluations()}


def test_reconciliation_catches_a_hand_deleted_extent(kusto, delivered, home):
    # A second sink on the topic, delivering into Audit through the Dagster job.
    create_table(kusto, delivered.db, "Audit")
    mapping = {"topic": delivered.topic, "db": delivered.db, "table": "Audit"}
    path = delivered.write_settings(
        "audit",
        name=f"{delivered.topic}-audit",
        mappings=[{**mapping, "format": "json", "mapping": "ids"}],
    )
    defs = build_definitions(str(path))
    audit = kusto_asset_key(delivered.db, "Audit")
    with delivered.runtime(path) as runtime:
        ranges = runtime.plan()
    with instance_at(home) as instance:
        loaded = defs.get_job_def("deliver_ranges").execute_in_process(
            run_config=run_config(ranges), instance=instance, resources=defs.resources
        )
        assert loaded.success
        good = check_results(defs, instance)[audit]
        assert good.passed and good.check_name == CHECK_NAME
        assert good.metadata["rows_expected"].value == RECORDS

        lost = batch_extents(kusto, delivered.db, "Audit", delivered.topic, 0)[1]
        drop_extents(kusto, delivered.db, "Audit", [lost])
        bad = check_results(defs, instance)[audit]
    assert not bad.passed
    assert bad.metadata["batches_mismatched"].value == 1
    assert lost.batch_id in bad.metadata["mismatches"].value

    env = {**os.environ, "DAGSTER_HOME": str(home)}
    validated = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "validate", "-c", str(path)] + ["--reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode != 0, validated.stdout
    assert f"MISMATCH: {delivered.db}.Audit" in validated.stdout
    assert lost.batch_id in validated.stdout
    assert f"reconciliation failed for {delivered.db}.Audit" in validated.stderr


def values(observation: dg.AssetObservation) -> dict[str, object]:
    return {k: v.value for k, v in observation.metadata.items()}


def test_status_sensor_records_lag_age_and_counters(stack, kusto, delivered, home):
    create_table(kusto, delivered.db, "Audit")
    defs = build_definitions(str(delivered.settings_path))
    (sensor,) = [s for s in defs.sensors if s.name.endswith("_status")]
    config = {"topic": delivered.topic, "from_offset": 0, "to_offset": 100, "table": "Audit"}
    with instance_at(home) as instance:
        assert (
            defs.get_job_def("backfill")
            .execute_in_process(
                run_config={"ops": {"plan_backfill": {"config": config}}},
                instance=instance,
                resources=defs.resources,
            )
            .success
        )
        # The live group is at the end: no lag yet, counters from the backfill.
        with dg.build_sensor_context(instance=instance) as context:
            first = sensor.evaluate_tick(context)
        (observation,) = first.asset_events
        meta = values(observation)
        assert observation.asset_key == kafka_asset_key(delivered.topic)
        assert meta["lag_records"] == 0 and meta["total_records_written"] == 200
        assert meta["records_written[1]"] == 100 and meta["committed[1]"] == RECORDS // 2

        producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
        old = int(time.time() * 1000) - 60_000
        for i in range(10):
            value = json.dumps({"id": 10_000 + i, "at": "2026-11-28T00:00:00Z"}).encode()
            producer.produce(delivered.topic, value=value, partition=0, timestamp=old)
        assert producer.flush(10) == 0
        with dg.build_sensor_context(instance=instance, cursor=first.cursor) as context:
            (later,) = sensor.evaluate_tick(context).asset_events
    meta = values(later)
    assert meta["lag_records[0]"] == 10 and meta["lag_records[1]"] == 0
    assert meta["lag_bytes[0]"] == 10 * len(value)
    assert 60 <= meta["oldest_undelivered_age_s"] < 120
    # Counted once: the cursor remembers where the first tick stopped.
    assert meta["total_records_written"] == 200


def test_status_command_shows_lag_counters_and_run_progress(kusto, delivered, home):
    create_table(kusto, delivered.db, "Audit")
    defs = build_definitions(str(delivered.settings_path))
    config = {"topic": delivered.topic, "from_offset": 0, "to_offset": 50, "table": "Audit"}
    with instance_at(home) as instance:
        run_config = {"ops": {"plan_backfill": {"config": config}}}
        assert (
            defs.get_job_def("backfill")
            .execute_in_process(run_config=run_config, instance=instance, resources=defs.resources)
            .success
        )
        # A run in flight, nothing materialized yet.
        queued = instance.create_run_for_job(
            defs.get_job_def("backfill"),
            run_config=run_config,
            tags=backfill_run_tags(delivered.topic, OffsetRange(delivered.topic, 0, 0, 50), None),
            status=dg.DagsterRunStatus.STARTED,
        )
    shown = CliRunner().invoke(status, ["-c", str(delivered.settings_path)])
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[0]: line.split() for line in shown.output.splitlines() if line}
    # committed, high, lag, lag bytes, oldest, written, failed, dead, attempts, ok, errors
    assert lines[f"{delivered.topic}[1]"][1:4] == ["300", "300", "0"]
    assert lines[f"{delivered.topic}[1]"][6] == "50"
    assert lines["total"][1:5] == ["0", "0", "-", "100"]  # lag, bytes, oldest, written
    assert f"run {queued.run_id[:8]} backfill {delivered.topic}[0] 0-50" in shown.output
    assert "[..............................]   0% 0/50" in shown.output
