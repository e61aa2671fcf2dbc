"""Reading Kafka: exactly one offset range with an assigned consumer, and partition states.

The reader never joins the consumer group: it assigns the partition at the range's start,
so no rebalance can move it and no other member's position matters. The group exists only
as the place where the sink's committed offsets live (see :mod:`pipelines.commit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import TypeVar

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
)
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, ListOffsetsResultInfo, OffsetSpec

from pipelines.errors import KafkaUnavailable, SinkError, TerminalError
from pipelines.plan import OffsetRange, PartitionState, TopicPartition

T = TypeVar("T")


# Settings of the reader that ``base`` may override. Fetch sizes stay librdkafka's: 8 MiB
# partition fetches measured slower than the 1 MiB default on a local broker.
READER_DEFAULTS: dict[str, str | int | bool] = {
    # Once its prefetch queue is full (queued.min.messages, 100 000), librdkafka waits this
    # long before fetching again: 1 s by default, so a reader that empties the queue in
    # 0.5 s then stalls. 1 M JSON records read in 1.8-3.7 s with the default, 0.8-1.0 s.
    "fetch.queue.backoff.ms": 10,
    # A fetch the broker holds open for lack of data (librdkafka's default: up to 500 ms)
    # delays the first fetch of the next range's partition, which waits for it to return:
    # 8 ranges of 25 000 records took 0.5 s each to start, 0.05 s with this.
    "fetch.wait.max.ms": 50,
}


def consumer_config(base: Mapping[str, str], group_id: str) -> dict[str, str | int | bool]:
    """The librdkafka settings of the sink's reader: ``base`` (connection, security,
    overrides) plus what the reader relies on, which ``base`` cannot turn off."""
    required: dict[str, str | int | bool] = {
        # Committed offsets of this group are the sink's progress; the reader only reads them.
        "group.id": group_id,
        # Offsets are committed by pipelines.commit once Kusto confirmed the range, never here.
        "enable.auto.commit": False,
        # Nor stored for a later commit: nothing but commit.py moves the group's offsets.
        "enable.auto.offset.store": False,
        # Records of aborted transactions must never reach Kusto.
        "isolation.level": "read_committed",
        # The log can end before the range does (transaction markers, compaction at the
        # tail): the EOF event says so without waiting for a timeout.
        "enable.partition.eof": True,
        # A start offset deleted by retention is an error to report, not a silent jump.
        "auto.offset.reset": "error",
    }
    return {**READER_DEFAULTS, **base, **required}


def read_range(
    consumer: Consumer,
    rng: OffsetRange,
    *,
    # Measured against 10 000 on a local broker: as fast or faster, and less CPU.
    batch_size: int = 1_000,
    poll_timeout_s: float = 1.0,
    idle_timeout_s: float = 30.0,
) -> Iterator[list[Message]]:
    """Yield the records of ``[rng.start, rng.end)`` in offset order, in lists.

    Offsets without a record (compacted away, transaction markers, aborted records) are
    skipped; the range ends once a record at ``end - 1`` or later shows up or the
    consumer's position reaches ``end``. Raises :class:`KafkaUnavailable` after
    ``idle_timeout_s`` without progress, naming the partition and offset it waited at.
    """
    consumer.assign([KafkaTopicPartition(rng.topic, rng.partition, rng.start)])
    try:
        position = rng.start
        progressed_at = time.monotonic()
        while position < rng.end:
            # Asking for no more than the offsets left lets consume() return as soon as the
            # range's last record arrives instead of waiting out the poll timeout.
            wanted = min(batch_size, rng.end - position)
            messages = consumer.consume(num_messages=wanted, timeout=poll_timeout_s)
            records = [m for m in messages if m.error() is None]
            if len(records) < len(messages):
                for m in messages:
                    _raise_unless_eof(m, rng)
            if records and records[-1].offset() >= rng.end:
                records = [m for m in records if m.offset() < rng.end]
                position = rng.end
            if records:
                yield records
                position = max(position, records[-1].offset() + 1)
                progressed_at = time.monotonic()
                continue
            if position >= rng.end:
                break
            # No record: the position may still have moved past markers or aborted records.
            (at,) = consumer.position([KafkaTopicPartition(rng.topic, rng.partition)])
            if at.offset > position:
                position, progressed_at = at.offset, time.monotonic()
            elif time.monotonic() - progressed_at > idle_timeout_s:
                raise KafkaUnavailable(
                    f"no record and no progress for {idle_timeout_s:.0f} s while reading "
                    f"offsets [{rng.start},{rng.end}) at offset {position}: broker "
                    "unreachable, or records not yet readable (a transaction still open)",
                    topic=rng.topic,
                    partition=rng.partition,
                )
    finally:
        consumer.unassign()


def _raise_unless_eof(message: Message, rng: OffsetRange) -> None:
    error = message.error()
    if error is None or error.code() == KafkaError._PARTITION_EOF:
        return
    if error.code() == KafkaError._AUTO_OFFSET_RESET:
        raise TerminalError(
            f"offset {rng.start} no longer exists (topic={rng.topic} "
            f"partition={rng.partition} offsets=[{rng.start},{rng.end})): retention deleted "
            f"records before the sink read them; the next plan starts at the low watermark "
            f"({error.str()})"
        )
    raise kafka_error(error, f"reading offsets [{rng.start},{rng.end})", rng.topic, rng.partition)


def kafka_error(
    error: KafkaError, doing: str, topic: str | None, partition: int | None
) -> SinkError:
    """The sink's error for a librdkafka error: transient when retrying can help."""
    message = f"{doing} failed: {error.str()} ({error.name()})"
    if error.retriable() or error.code() in _TRANSIENT_CODES:
        return KafkaUnavailable(message, topic=topic, partition=partition)
    where = [f"topic={topic}"] if topic else []
    where += [f"partition={partition}"] if partition is not None else []
    return TerminalError(f"{message} ({' '.join(where)})" if where else message)


# Errors librdkafka does not mark retriable but that a broker restart or a slow network
# cause, and that retrying later fixes.
_TRANSIENT_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
    }
)


def partition_states(
    admin: AdminClient, group_id: str, topics: Iterable[str], *, timeout_s: float = 10.0
) -> dict[TopicPartition, PartitionState]:
    """Committed offset and watermarks of every partition of ``topics``.

    Made for sensors, which have seconds: every question is asked for all partitions at
    once (one metadata request, one offset fetch for the group, one ListOffsets each for
    the low and high watermarks), so the cost does not grow with the partition count, as
    it would with a ``get_watermark_offsets`` round trip per partition. The high watermark
    is the last stable offset, the end of what a ``read_committed`` reader can read.
    """
    topics = list(topics)
    metadata = _call("listing partitions", topics, lambda: admin.list_topics(timeout=timeout_s))
    partitions: list[KafkaTopicPartition] = []
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            reason = found.error.str() if found is not None and found.error else "not found"
            raise TerminalError(f"topic={topic} cannot be read: {reason}")
        partitions += [KafkaTopicPartition(topic, p) for p in sorted(found.partitions)]
    if not partitions:
        return {}

    def offsets(spec: OffsetSpec) -> dict[KafkaTopicPartition, Future[ListOffsetsResultInfo]]:
        return admin.list_offsets(
            {tp: spec for tp in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=timeout_s,
        )

    lows, highs = offsets(OffsetSpec.earliest()), offsets(OffsetSpec.latest())
    committed = stable_committed(admin, group_id, partitions, topics, timeout_s)
    states: dict[TopicPartition, PartitionState] = {}
    for tp in partitions:
        low = _call("reading watermarks", [tp.topic], lows[tp].result).offset
        high = _call("reading watermarks", [tp.topic], highs[tp].result).offset
        offset = committed.get((tp.topic, tp.partition))
        # Negative offsets are librdkafka's "nothing committed" (OFFSET_INVALID).
        states[TopicPartition(tp.topic, tp.partition)] = PartitionState(
            committed=offset if offset is not None and offset >= 0 else None,
            low=low,
            high=high,
        )
    return states


def stable_committed(
    admin: AdminClient,
    group_id: str,
    partitions: list[KafkaTopicPartition],
    topics: list[str],
    timeout_s: float = 10.0,
) -> dict[tuple[str, int], int]:
    """The group's committed offsets, once no partition has a transactional commit in flight.

    Right after a transaction commits, its offsets are pending until the broker writes the
    commit markers; the broker then answers UNSTABLE_OFFSET_COMMIT for those partitions (with
    no offset), which must not read as "nothing committed".
    """
    deadline = time.monotonic() + timeout_s
    while True:
        request = ConsumerGroupTopicPartitions(group_id, partitions)
        future = admin.list_consumer_group_offsets(
            [request], require_stable=True, request_timeout=timeout_s
        )[group_id]
        answer = _call("reading committed offsets", topics, future.result).topic_partitions
        failed = [tp for tp in answer if tp.error is not None]
        unstable = all(tp.error.code() == KafkaError.UNSTABLE_OFFSET_COMMIT for tp in failed)
        if failed and unstable and time.monotonic() < deadline:
            time.sleep(0.1)
            continue
        if failed:
            tp = failed[0]
            raise kafka_error(
                tp.error, f"reading the committed offset of group={group_id}", tp.topic,
                tp.partition,
            )  # fmt: skip
        return {(tp.topic, tp.partition): tp.offset for tp in answer}


def _call(doing: str, topics: list[str], call: Callable[[], T]) -> T:
    try:
        return call()
    except KafkaException as exc:
        raise kafka_error(exc.args[0], doing, ",".join(topics), None) from exc
