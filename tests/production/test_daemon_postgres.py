"""Concurrent runs through `dagster-daemon` on PostgreSQL, as a production deployment runs.

The instance is the project's dagster_postgres.yaml (queued run coordinator, a run limit
per sink) on a PostgreSQL of Debian's package. The lag sensor plans a 16-partition topic
into two runs of eight ranges, the daemon launches both at once, and every record must land
exactly once with every offset committed, the runs overlapping in time, and no SQLite or
lock error anywhere: that is what SQLite storage could not do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pytest
from azure.kusto.data import KustoClient
from confluent_kafka import Producer

from devstack.dagster_daemon import dagster_daemon
from devstack.stack import StackConfig
from pipelines.config import load_settings
from pipelines.jobs import SINK_TAG
from pipelines.runtime import SinkRuntime
from sensors.lag import IN_FLIGHT

pytestmark = pytest.mark.stack

PARTITIONS = 16  # two runs: the sensors put at most eight partitions in one run
RECORDS = 1600
# Typically drained in 40-60 s; the margin is for a loaded machine (run start-up is CPU-bound).
DEADLINE_S = 240
LOCK_ERRORS = ("database is locked", "sqlite3.OperationalError", "SQLITE_BUSY")


def produce_events(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(RECORDS):
        value = json.dumps({"id": i, "kind": ("a", "b", "c")[i % 3]}).encode()
        producer.produce(topic, value, partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def overlapping(records: list[dg.RunRecord]) -> list[tuple[str, str]]:
    """Pairs of runs that were running at the same moment."""
    spans = [(r.dagster_run.run_id[:8], r.start_time or 0.0, r.end_time or 0.0) for r in records]
    return [
        (a, b)
        for i, (a, a_start, a_end) in enumerate(spans)
        for b, b_start, b_end in spans[i + 1 :]
        if a_start < b_end and b_start < a_end
    ]


@pytest.mark.timeout(DEADLINE_S + 120)
def test_daemon_runs_partitions_concurrently_on_postgres(
    stack: StackConfig,
    kusto: KustoClient,
    kusto_db: str,
    make_topic,
    write_settings,
    dagster_postgres_home: Path,
):
    topic = make_topic(partitions=PARTITIONS)
    kusto.execute_mgmt(kusto_db, ".create table Events (id:long, kind:string)")
    produce_events(stack.bootstrap_servers, topic)
    settings_path = write_settings(
        topic,
        [{"topic": topic, "db": kusto_db, "table": "Events", "format": "multijson"}],
        value_converter={"kind": "json"},
        # Every lagging partition is the lag sensor's (ticks every 5 s), at once.
        lag_threshold_records=1,
        # A sensor's run follows its partitions until they stay quiet this long.
        flush_interval_ms=2000,
    )
    # The schema first, from one process: the daemon and its runs then only use it.
    instance = dg.DagsterInstance.get()
    with (
        SinkRuntime(load_settings(settings_path)) as runtime,
        dagster_daemon(dagster_postgres_home, settings_path),
    ):
        deadline = time.monotonic() + DEADLINE_S
        while True:
            states = runtime.partition_states()
            committed = all(s.committed == s.high for s in states.values())
            in_flight = instance.get_runs(
                filters=dg.RunsFilter(tags={SINK_TAG: topic}, statuses=IN_FLIGHT)
            )
            if committed and not in_flight:
                break
            assert time.monotonic() < deadline, f"not drained in {DEADLINE_S} s: {states}"
            time.sleep(1)

    counts = kusto.execute_query(kusto_db, "Events | summarize n=count(), ids=dcount(id)")
    row = counts.primary_results[0][0]
    assert (row["n"], row["ids"]) == (RECORDS, RECORDS), "every record exactly once"

    records = instance.get_run_records(dg.RunsFilter(tags={SINK_TAG: topic}))
    # A run that fails on a starved machine is retried by the daemon (FROM_FAILURE); the
    # records above say whether that cost anything. Two runs must have succeeded, together.
    succeeded = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
    assert len(succeeded) >= 2, [(r.dagster_run.run_id[:8], r.dagster_run.status) for r in records]
    assert overlapping(records), "the daemon ran the two runs at the same time"

    texts = [p.read_text(errors="replace") for p in dagster_postgres_home.rglob("*") if p.is_file()]
    texts += [
        str(entry)
        for r in records
        for entry in instance.all_logs(r.dagster_run.run_id)
        if entry.is_dagster_event and entry.dagster_event and entry.dagster_event.is_failure
    ]
    instance.dispose()
    found = [error for error in LOCK_ERRORS for text in texts if error in text]
    assert found == [], "no SQLite in the way, no lock errors"
