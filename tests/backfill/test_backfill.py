"""Backfills against the local stack: by offsets and by time, into the live table and into
another one, and a gap left by a dropped extent; never moving the group's offsets.
``replace`` has its own module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest
from backfill_data import PARTITIONS, RECORDS, create_table, ids_in, record_time
from confluent_kafka import Producer

from pipelines.backfill import BackfillRequest, backfill_range, plan_backfill
from pipelines.backfill_job import BACKFILL_TAG
from pipelines.definitions import build_definitions
from pipelines.extents import batch_extents, drop_extents
from pipelines.jobs import RANGE_TAG

pytestmark = pytest.mark.stack


def committed(delivered) -> dict[int, int | None]:
    with delivered.runtime() as runtime:
        states = runtime.partition_states()
    return {tp.partition: s.committed for tp, s in states.items()}


def backfill(delivered, request: BackfillRequest, settings_path=None) -> int:
    """Plan and run ``request`` in process; the rows it loaded."""
    with delivered.runtime(settings_path) as runtime:
        plan = plan_backfill(runtime, request)
        reports = [r for rng in plan.ranges for r in backfill_range(runtime, rng, request.table)]
    return sum(r.rows for r in reports)


def test_backfill_of_the_live_table_adds_nothing_even_when_cut_differently(kusto, delivered):
    before = committed(delivered)
    # Another flush size and range start: the live sink's batches end elsewhere.
    other_cuts = delivered.write_settings("other-cuts", flush_size_bytes=7_000)
    request = BackfillRequest(delivered.topic, start=17)
    assert backfill(delivered, request, other_cuts) == 0
    assert ids_in(kusto, delivered.db, "Events") == list(range(RECORDS))
    assert committed(delivered) == before == {0: RECORDS // 2, 1: RECORDS // 2}


def test_backfill_of_the_live_table_leaves_uncommitted_offsets_to_the_live_sink(
    stack, kusto, delivered
):
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    for i in range(RECORDS, RECORDS + 20):
        value = json.dumps({"id": i, "at": record_time(i).isoformat()}).encode()
        producer.produce(delivered.topic, value=value, partition=i % PARTITIONS)
    assert producer.flush(10) == 0
    with delivered.runtime() as runtime:
        plan = plan_backfill(runtime, BackfillRequest(delivered.topic, start=0))
        # Naming the live table, with or without its database, changes nothing.
        for table in ("Events", f"{delivered.db}.Events"):
            named = plan_backfill(runtime, BackfillRequest(delivered.topic, start=0, table=table))
            assert {r.end for r in named.ranges} == {RECORDS // 2}, table
    assert {r.end for r in plan.ranges} == {RECORDS // 2}
    assert backfill(delivered, BackfillRequest(delivered.topic, start=0)) == 0
    assert len(ids_in(kusto, delivered.db, "Events")) == RECORDS


def test_a_dropped_extent_is_filled_again_with_the_same_batch_ids(kusto, delivered):
    extents = batch_extents(kusto, delivered.db, "Events", delivered.topic, 1)
    lost = sorted(extents, key=lambda e: e.first_offset)[2]
    drop_extents(kusto, delivered.db, "Events", [lost])
    assert len(ids_in(kusto, delivered.db, "Events")) == RECORDS - lost.rows

    assert backfill(delivered, BackfillRequest(delivered.topic, start=0)) == lost.rows
    assert ids_in(kusto, delivered.db, "Events") == list(range(RECORDS))
    again = {e.batch_id for e in batch_extents(kusto, delivered.db, "Events", delivered.topic)}
    assert lost.batch_id in again and len(again) == len(
        batch_extents(kusto, delivered.db, "Events", delivered.topic)
    )


def test_backfill_by_time_into_another_table_from_the_launchpad_config(kusto, delivered):
    create_table(kusto, delivered.db, "Audit")
    defs = build_definitions(str(delivered.settings_path))
    config = {
        "topic": delivered.topic,
        "from_time": record_time(100).isoformat(),
        "to_time": record_time(300).isoformat(),
        "table": "Audit",
    }
    before = committed(delivered)
    with dg.instance_for_test() as instance:
        result = defs.get_job_def("backfill").execute_in_process(
            run_config={"ops": {"plan_backfill": {"config": config}}},
            instance=instance,
            resources=defs.resources,
        )
        described = instance.get_run_by_id(result.run_id).tags[RANGE_TAG]
    assert result.success
    assert described.startswith(f"backfill {delivered.topic}[all] 2026-11-27T10:01:40")
    assert described.endswith(" into Audit")
    assert ids_in(kusto, delivered.db, "Audit") == list(range(100, 300))
    materialized = result.asset_materializations_for_node("backfill_chunk")
    assert sum(m.metadata["rows"].value for m in materialized) == 200
    assert committed(delivered) == before
    # The same window again: the tags in Audit say it is all there.
    with dg.instance_for_test() as instance:
        again = defs.get_job_def("backfill").execute_in_process(
            run_config={"ops": {"plan_backfill": {"config": config}}},
            instance=instance,
            resources=defs.resources,
        )
    assert again.success and not again.asset_materializations_for_node("backfill_chunk")
    assert len(ids_in(kusto, delivered.db, "Audit")) == 200


def test_backfill_by_offsets_of_some_partitions(kusto, delivered):
    create_table(kusto, delivered.db, "Audit")
    request = BackfillRequest(delivered.topic, 10, 40, partitions=(1,), table="Audit")
    assert backfill(delivered, request) == 30
    # Partition 1 holds the odd ids: offset n is id 2n + 1.
    assert ids_in(kusto, delivered.db, "Audit") == [2 * n + 1 for n in range(10, 40)]


def test_cli_backfills_a_time_window_into_a_new_table(kusto, delivered, tmp_path):
    create_table(kusto, delivered.db, "Audit")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    args = [
        *("backfill", "-c", str(delivered.settings_path), "--topic", delivered.topic),
        *("--from", record_time(250).isoformat(), "--to", record_time(400).isoformat()),
        *("--partitions", "0,1", "--table", "Audit"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "150 offsets in 2 run(s)" in done.stdout
    assert "backfilled: 150 rows" in done.stdout
    assert ids_in(kusto, delivered.db, "Audit") == list(range(250, 400))
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
    assert len(runs) == 2
    assert all(run.tags[BACKFILL_TAG] == delivered.topic for run in runs)
