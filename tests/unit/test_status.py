"""Without servers: what the status sensor, `kusto-sink status` and the Prometheus endpoint
are fed: lag estimated from a sample, counters folded from delivery observations once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import dagster as dg
import pytest
from click.testing import CliRunner
from confluent_kafka import Message

from pipelines import metrics
from pipelines.plan import OffsetRange, PartitionState, TopicPartition
from pipelines.prometheus import metrics as metrics_command
from pipelines.status import Lag, PartitionStatus, SinkStatus, partition_statuses, sink_status
from pipelines.status_cli import render
from pipelines.status_cli import status as status_command
from sensors.status import topic_metadata

ORDERS_0, ORDERS_1, CLICKS_0 = (
    TopicPartition("orders", 0),
    TopicPartition("orders", 1),
    TopicPartition("clicks", 0),
)


@dataclass
class SampleConsumer:
    """Serves the records behind each assigned partition's start offset, like one fetch."""

    behind: dict[TopicPartition, list[Message]]
    assigned: list[TopicPartition] = field(default_factory=list)

    def assign(self, partitions: list) -> None:
        self.assigned = [TopicPartition(p.topic, p.partition) for p in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        return [m for tp in self.assigned for m in self.behind.get(tp, [])[:num_messages]]

    def unassign(self) -> None:
        self.assigned = []


def record(tp: TopicPartition, value: bytes, *, age_s: float, key: bytes = b"") -> Message:
    ms = int((time.time() - age_s) * 1000)
    return Message(topic=tp.topic, partition=tp.partition, key=key, value=value, timestamp=(1, ms))


def status(tp: TopicPartition, lag: int, lag_bytes: int = 0, age: float | None = None):
    return PartitionStatus(
        tp, committed=10, high=10 + lag, lag_records=lag, lag_bytes=lag_bytes, oldest_age_s=age
    )


def test_lag_bytes_and_age_come_from_a_sample_of_the_records_behind():
    oldest = record(ORDERS_0, b"x" * 90, key=b"k" * 10, age_s=60)
    behind = {ORDERS_0: [oldest, record(ORDERS_0, b"y" * 300, age_s=5)]}
    states = {
        ORDERS_0: PartitionState(committed=100, low=0, high=110),
        ORDERS_1: PartitionState(committed=50, low=0, high=50),
    }
    consumer = SampleConsumer(behind)
    (lagging, caught_up) = partition_statuses(consumer, states, "earliest", timeout_s=1)  # type: ignore[arg-type]
    assert (lagging.committed, lagging.high, lagging.lag_records) == (100, 110, 10)
    assert lagging.lag_bytes == 10 * (100 + 300) // 2
    assert lagging.oldest_age_s == pytest.approx(60, abs=2)
    assert caught_up == PartitionStatus(ORDERS_1, 50, 50, 0, 0, None)
    assert consumer.assigned == [], "the sample leaves nothing assigned"


def test_a_never_committed_partition_lags_from_where_auto_offset_reset_points():
    states = {ORDERS_0: PartitionState(committed=None, low=20, high=30)}
    consumer = SampleConsumer({ORDERS_0: [record(ORDERS_0, b"abcd", age_s=1)]})
    (earliest,) = partition_statuses(consumer, states, "earliest", timeout_s=1)  # type: ignore[arg-type]
    (latest,) = partition_statuses(consumer, states, "latest", timeout_s=1)  # type: ignore[arg-type]
    assert (earliest.committed, earliest.lag_records, earliest.lag_bytes) == (None, 10, 40)
    assert (latest.lag_records, latest.oldest_age_s) == (0, None)


def test_lag_sums_records_and_bytes_and_keeps_the_oldest_age():
    partitions = [
        status(ORDERS_0, 10, 1000, 30.0),
        status(ORDERS_1, 0),
        status(CLICKS_0, 5, 50, 90.0),
    ]
    sink = SinkStatus(tuple(partitions), metrics.Totals({}))
    assert sink.topics() == ["clicks", "orders"]
    assert sink.lag() == Lag(records=15, bytes=1050, oldest_age_s=90.0)
    assert sink.lag("orders") == Lag(records=10, bytes=1000, oldest_age_s=30.0)
    assert Lag.of([status(ORDERS_1, 0)]) == Lag(0, 0, None)


def delivered(instance: dg.DagsterInstance, rng: OffsetRange, rows: int) -> None:
    counters = metrics.Counters(records_written=rows, records_read=rows, offset_commits=1)
    instance.report_runless_asset_event(metrics.delivery_observation(rng, counters, kind="live"))


def test_deliveries_are_counted_once_by_a_caller_that_keeps_its_totals():
    states = {ORDERS_0: PartitionState(committed=100, low=0, high=100)}
    runtime = SimpleNamespace(
        partition_states=lambda: states,
        consumer=SampleConsumer({}),
        settings=SimpleNamespace(kafka=SimpleNamespace(auto_offset_reset="earliest")),
    )
    with dg.DagsterInstance.ephemeral() as instance:
        delivered(instance, OffsetRange("orders", 0, 0, 60), 60)
        totals = metrics.Totals({})
        first = sink_status(runtime, instance, totals)  # type: ignore[arg-type]
        delivered(instance, OffsetRange("orders", 0, 60, 100), 40)
        second = sink_status(runtime, instance, totals)  # type: ignore[arg-type]
        from_scratch = sink_status(runtime, instance)  # type: ignore[arg-type]
    assert first.totals.of(ORDERS_0).records_written == 60, "a status is not changed by later folds"
    assert second.totals.of(ORDERS_0).records_written == 100
    assert from_scratch.totals.total("orders").offset_commits == 2
    assert second.partitions == (PartitionStatus(ORDERS_0, 100, 100, 0, 0, None),)


def test_the_terminal_table_and_the_sensor_metadata_show_the_same_numbers():
    totals = metrics.Totals({ORDERS_0: metrics.Counters(records_written=7, records_failed=1)})
    sink = SinkStatus((status(ORDERS_0, 10, 1000, 30.4), status(ORDERS_1, 0)), totals)
    rows = {line.split()[0]: line.split() for line in render(sink, []).splitlines()}
    # committed, high, lag, lag bytes, oldest, written, failed, dead, attempts, ok, errors
    assert rows["orders[0]"][1:8] == ["10", "20", "10", "1000", "30s", "7", "1"]
    assert rows["orders[1]"][3:7] == ["0", "0", "-", "0"]
    assert rows["total"][1:5] == ["10", "1000", "30s", "7"]
    assert rows["no"] == "no drain or backfill run in flight".split()

    meta = topic_metadata(sink, "orders")
    assert (meta["lag_records"], meta["lag_bytes"], meta["oldest_undelivered_age_s"]) == (
        10,
        1000,
        30.4,
    )
    assert meta["total_records_written"] == 7 and meta["records_failed[0]"] == 1
    assert meta["oldest_undelivered_age_s[1]"] == 0.0 and meta["committed[1]"] == 10


@pytest.mark.parametrize("command", [status_command, metrics_command])
def test_commands_name_a_missing_settings_file_without_a_traceback(command, monkeypatch):
    monkeypatch.delenv("KUSTO_SINK_CONFIG", raising=False)
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 1
    assert "no settings file: pass -c FILE or set KUSTO_SINK_CONFIG" in result.output
    assert "Traceback" not in result.output
