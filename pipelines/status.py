"""Where a sink stands: each partition's committed offset, high watermark, lag and age of the
oldest undelivered record, with the delivery counters of :mod:`pipelines.metrics`. One
:func:`sink_status` feeds the status sensor (the UI's plots), ``kusto-sink status`` and the
Prometheus endpoint; each of them only formats the :class:`SinkStatus` it returns.

Kafka tells records, not bytes, behind a committed offset, and not how old they are. Both
come from a small sample read at each lagging partition's next offset: the first record's
time is the age of the oldest undelivered record, and the sample's mean size times the lag
estimates the bytes behind. The sample is one fetch per partition, never the lag itself.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from confluent_kafka import Consumer, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipelines.metrics import Totals, add_new_deliveries
from pipelines.plan import AutoOffsetReset, PartitionState, TopicPartition
from pipelines.runtime import SinkRuntime

# Records sampled per lagging partition for its mean record size.
SAMPLE_RECORDS = 100


@dataclass(frozen=True)
class PartitionStatus:
    topic_partition: TopicPartition
    committed: int | None
    high: int
    lag_records: int
    # Estimated: lag_records times the mean size (key + value) of the sampled records.
    lag_bytes: int
    # Seconds since the oldest undelivered record's time; None without lag.
    oldest_age_s: float | None


@dataclass(frozen=True)
class Lag:
    """How far behind some partitions are, together."""

    records: int = 0
    bytes: int = 0
    # The oldest undelivered record's age over all the partitions; None without lag.
    oldest_age_s: float | None = None

    @classmethod
    def of(cls, partitions: Iterable[PartitionStatus]) -> Lag:
        partitions = list(partitions)
        ages = [p.oldest_age_s for p in partitions if p.oldest_age_s is not None]
        return cls(
            records=sum(p.lag_records for p in partitions),
            bytes=sum(p.lag_bytes for p in partitions),
            oldest_age_s=max(ages) if ages else None,
        )


@dataclass(frozen=True)
class SinkStatus:
    """Every partition of the sink's topics, and the delivery counters counted so far."""

    partitions: tuple[PartitionStatus, ...]
    totals: Totals

    def topics(self) -> list[str]:
        return sorted({p.topic_partition.topic for p in self.partitions})

    def of_topic(self, topic: str) -> list[PartitionStatus]:
        return [p for p in self.partitions if p.topic_partition.topic == topic]

    def lag(self, topic: str | None = None) -> Lag:
        """The lag of one topic's partitions, or of all of them."""
        return Lag.of(self.partitions if topic is None else self.of_topic(topic))


def sink_status(
    runtime: SinkRuntime, instance: dg.DagsterInstance, totals: Totals | None = None
) -> SinkStatus:
    """Partition states and lag samples from Kafka, counters from ``instance``'s event log.

    The delivery observations recorded after ``totals.storage_id`` are folded into
    ``totals`` in place, so a caller that keeps it (a sensor's cursor, a long-lived
    endpoint) counts each once; without it the counters start from the beginning. The
    returned status holds a copy, unaffected by later folds.
    """
    states = runtime.partition_states()
    partitions = partition_statuses(
        runtime.consumer, states, runtime.settings.kafka.auto_offset_reset
    )
    totals = Totals({}) if totals is None else totals
    add_new_deliveries(instance, sorted({tp.topic for tp in states}), totals)
    return SinkStatus(tuple(partitions), copy.deepcopy(totals))


def partition_statuses(
    consumer: Consumer,
    states: dict[TopicPartition, PartitionState],
    reset: AutoOffsetReset,
    *,
    timeout_s: float = 3.0,
) -> list[PartitionStatus]:
    """The status of every partition of ``states``, sampling the lagging ones."""
    lagging = {tp: s.start(reset) for tp, s in states.items() if s.lag(reset) > 0}
    samples = _sample(consumer, lagging, timeout_s) if lagging else {}
    now = time.time()
    statuses = []
    for tp, state in sorted(states.items()):
        lag = state.lag(reset)
        sample = samples.get(tp, [])
        mean = sum(_size(m) for m in sample) / len(sample) if sample else 0.0
        first_ms = sample[0].timestamp()[1] if sample else -1
        statuses.append(
            PartitionStatus(
                topic_partition=tp,
                committed=state.committed,
                high=state.high,
                lag_records=lag,
                lag_bytes=round(lag * mean),
                oldest_age_s=max(0.0, now - first_ms / 1000) if lag and first_ms >= 0 else None,
            )
        )
    return statuses


def _sample(
    consumer: Consumer, starts: dict[TopicPartition, int], timeout_s: float
) -> dict[TopicPartition, list[Message]]:
    """Up to SAMPLE_RECORDS records from each partition's start offset."""
    consumer.assign([KafkaTopicPartition(tp.topic, tp.partition, o) for tp, o in starts.items()])
    found: dict[TopicPartition, list[Message]] = {tp: [] for tp in starts}
    deadline = time.monotonic() + timeout_s
    try:
        # One fetch usually brings a sample of every partition; wait only for a first record.
        while time.monotonic() < deadline and any(not found[tp] for tp in starts):
            for message in consumer.consume(num_messages=SAMPLE_RECORDS, timeout=0.5):
                if message.error() is not None:
                    continue
                tp = TopicPartition(message.topic() or "", message.partition() or 0)
                if tp in found and len(found[tp]) < SAMPLE_RECORDS:
                    found[tp].append(message)
    finally:
        consumer.unassign()
    return found


def _size(message: Message) -> int:
    return len(message.value() or b"") + len(message.key() or b"")
