"""Where each partition stands: committed offset, high watermark, lag, age of the oldest
undelivered record. Read by the status sensor (for the UI's plots) and ``kusto-sink status``.

Kafka tells records, not bytes, behind a committed offset, and not how old they are. Both
come from a small sample read at each lagging partition's next offset: the first record's
time is the age of the oldest undelivered record, and the sample's mean size times the lag
estimates the bytes behind. The sample is one fetch per partition, never the lag itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipelines.plan import AutoOffsetReset, PartitionState, TopicPartition

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
