"""Compare-and-set offset commits, dead letters and fencing against the real local broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient

from devstack.stack import StackConfig
from pipelines.commit import (
    ERROR_MESSAGE_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TIMESTAMP_HEADER,
    SOURCE_TOPIC_HEADER,
    OffsetCommitter,
    SinkFenced,
    transactional_id,
)
from pipelines.errors import CommitConflict, SinkError, TerminalError
from pipelines.plan import OffsetRange
from pipelines.read import consumer_config, read_range
from pipelines.records import DeadLetter


def test_transactional_id_names_sink_topic_and_partition() -> None:
    assert transactional_id("orders-sink", "orders", 2) == "kusto-sink-orders-sink-orders-2"


@dataclass
class Sink:
    """One sink's group on a fresh one-partition topic, and the committers it opened."""

    kafka: dict[str, str]
    group: str
    topic: str
    make_topic: Callable[..., str]
    opened: list[OffsetCommitter] = field(default_factory=list)

    def committer(self) -> OffsetCommitter:
        """A new transactional committer of the group, as a run opens it, once it has fenced
        older ones."""
        committer = self._open(f"kusto-sink-{self.group}")
        committer.fence()
        return committer

    def plain_committer(self) -> OffsetCommitter:
        return self._open(None)

    def _open(self, transactional_id: str | None) -> OffsetCommitter:
        committer = OffsetCommitter(
            self.kafka, group_id=self.group, transactional_id=transactional_id
        )
        self.opened.append(committer)
        return committer

    @cached_property
    def dlq(self) -> str:
        return self.make_topic(partitions=1)

    def produce(self, count: int, **record: Any) -> None:
        producer = Producer(self.kafka)
        for _ in range(count):
            producer.produce(self.topic, partition=0, **record)
        assert producer.flush(30) == 0

    def committed_by_plain_consumer(self) -> int:
        consumer = Consumer({**self.kafka, "group.id": self.group})
        try:
            (tp,) = consumer.committed([KafkaTopicPartition(self.topic, 0)], timeout=10)
            return tp.offset
        finally:
            consumer.close()

    def bad_record(self) -> DeadLetter:
        """A dead letter for a record written to the topic just now."""
        self.produce(1, value=b"bad")
        consumer = Consumer(consumer_config(self.kafka, "reader"))
        try:
            (low, high) = consumer.get_watermark_offsets(
                KafkaTopicPartition(self.topic, 0), timeout=10
            )
            (batch,) = read_range(consumer, OffsetRange(self.topic, 0, high - 1, high))
            return DeadLetter(batch[0], ValueError("not JSON"))
        finally:
            consumer.close()

    def dead_letters(self) -> list[Message]:
        consumer = Consumer(consumer_config(self.kafka, f"{self.group}-reader"))
        try:
            tp = KafkaTopicPartition(self.dlq, 0)
            (low, high) = consumer.get_watermark_offsets(tp, timeout=10)
            if high == low:
                return []
            return [
                m
                for batch in read_range(consumer, OffsetRange(self.dlq, 0, low, high))
                for m in batch
            ]
        finally:
            consumer.close()


@pytest.fixture
def sink(stack: StackConfig, make_topic: Callable[..., str], unique_name: str) -> Iterator[Sink]:
    setup = Sink(
        kafka={"bootstrap.servers": stack.bootstrap_servers},
        group=unique_name,
        topic=make_topic(partitions=1),
        make_topic=make_topic,
    )
    yield setup
    for committer in setup.opened:
        committer.close()


@pytest.mark.stack
def test_transaction_commits_offset_of_a_group_without_members_and_writes_dead_letters(
    sink: Sink,
) -> None:
    producer = Producer(sink.kafka)
    for i in range(10):
        producer.produce(
            sink.topic,
            key=b"k%d" % i,
            value=b"\xff not json %d" % i,
            partition=0,
            headers=[("trace", b"\x00\x01")],
            timestamp=1_700_000_000_000 + i,
        )
    producer.flush(30)
    # The sink's own reader is assigned, never subscribed: the group has no members.
    reader = Consumer(consumer_config(sink.kafka, sink.group))
    records = [m for b in read_range(reader, OffsetRange(sink.topic, 0, 0, 10)) for m in b]
    bad = [DeadLetter(records[3], ValueError("not JSON at byte 0"))]

    committer = sink.committer()
    committer.commit(OffsetRange(sink.topic, 0, 0, 10), [(sink.dlq, d) for d in bad])
    reader.close()

    assert sink.committed_by_plain_consumer() == 10
    assert committer.committed(sink.topic, 0) == 10
    (letter,) = sink.dead_letters()
    assert (letter.key(), letter.value()) == (b"k3", b"\xff not json 3")
    assert letter.timestamp()[1] == 1_700_000_000_003
    headers = letter.headers()
    assert headers[0] == ("trace", b"\x00\x01")  # the record's own headers come first, unchanged
    assert dict(headers)[SOURCE_TOPIC_HEADER] == sink.topic.encode()
    assert dict(headers)[SOURCE_PARTITION_HEADER] == b"0"
    assert dict(headers)[SOURCE_OFFSET_HEADER] == b"3"
    assert dict(headers)[SOURCE_TIMESTAMP_HEADER] == b"1700000000003"
    assert dict(headers)[ERROR_MESSAGE_HEADER] == b"not JSON at byte 0"


@pytest.mark.stack
def test_commit_never_overwrites_an_offset_that_moved(sink: Sink) -> None:
    topic = sink.topic
    committer = sink.committer()
    committer.commit(OffsetRange(topic, 0, 0, 100))

    with pytest.raises(CommitConflict) as conflict:
        committer.commit(OffsetRange(topic, 0, 0, 100), [(sink.dlq, sink.bad_record())])
    message = str(conflict.value)
    assert f"group={sink.group} found committed offset 100, not the range start" in message
    assert "committed before" in message
    assert f"topic={topic} partition=0 offsets=[0,100) committed=100" in message
    with pytest.raises(CommitConflict, match="another run moved it past the range start"):
        committer.commit(OffsetRange(topic, 0, 50, 150))
    with pytest.raises(CommitConflict, match="would skip records that still exist"):
        committer.commit(OffsetRange(topic, 0, 150, 200))

    committer.commit(OffsetRange(topic, 0, 100, 200))
    assert committer.committed(topic, 0) == 200
    assert sink.dead_letters() == []  # a refused commit writes no dead letters


@pytest.mark.stack
def test_a_first_commit_may_start_only_where_the_readable_records_start(sink: Sink) -> None:
    topic = sink.topic
    sink.produce(30, value=b"v")
    committer = sink.committer()
    # Nothing committed: a range after the low watermark would skip records 0-9.
    with pytest.raises(CommitConflict, match="found committed offset none.*would skip"):
        committer.commit(OffsetRange(topic, 0, 10, 20))
    committer.commit(OffsetRange(topic, 0, 0, 10))

    # Retention deletes 10-19 before the sink reads them: the plan starts at 20.
    admin = AdminClient(sink.kafka)
    for future in admin.delete_records([KafkaTopicPartition(topic, 0, 20)]).values():
        future.result()
    committer.commit(OffsetRange(topic, 0, 20, 30))
    assert committer.committed(topic, 0) == 30


@pytest.mark.stack
def test_a_dead_letter_that_cannot_be_written_aborts_the_commit_and_names_its_topic(
    sink: Sink,
) -> None:
    letter = sink.bad_record()
    committer = sink.committer()
    invalid = "x" * 300  # longer than Kafka allows a topic name

    with pytest.raises(SinkError, match=f"writing 1 dead letter.s. to topic {invalid} failed"):
        committer.commit(OffsetRange(sink.topic, 0, 0, 1), [(invalid, letter)])
    assert committer.committed(sink.topic, 0) is None

    committer.commit(OffsetRange(sink.topic, 0, 0, 1))  # the aborted transaction left no trace
    assert committer.committed(sink.topic, 0) == 1


@pytest.mark.stack
def test_a_newer_committer_with_the_same_transactional_id_fences_the_older(sink: Sink) -> None:
    letter = sink.bad_record()
    zombie = sink.committer()
    sink.committer()  # a new run of the same sink and partition starts

    with pytest.raises(SinkFenced, match="another sink instance") as fenced:
        zombie.commit(OffsetRange(sink.topic, 0, 0, 1), [(sink.dlq, letter)])
    assert not fenced.value.transient
    assert sink.committed_by_plain_consumer() < 0  # nothing committed
    assert sink.dead_letters() == []


@pytest.mark.stack
def test_a_fenced_committer_fences_in_turn_when_its_next_delivery_begins(sink: Sink) -> None:
    first = sink.committer()
    first.commit(OffsetRange(sink.topic, 0, 0, 10))
    second = sink.committer()  # another process took the partition over, committed once
    second.commit(OffsetRange(sink.topic, 0, 10, 20))

    with pytest.raises(SinkFenced):
        first.commit(OffsetRange(sink.topic, 0, 20, 30))
    first.prepare()  # its next delivery begins
    first.fence()
    first.commit(OffsetRange(sink.topic, 0, 20, 30))

    with pytest.raises(SinkFenced):
        second.commit(OffsetRange(sink.topic, 0, 30, 40))
    assert sink.committed_by_plain_consumer() == 30


@pytest.mark.stack
def test_two_sinks_racing_on_one_range_cannot_both_commit(sink: Sink) -> None:
    for start in (0, 50, 100):
        rng = OffsetRange(sink.topic, 0, start, start + 50)
        outcomes: list[str] = []

        def run(rng: OffsetRange = rng, outcomes: list[str] = outcomes) -> None:
            # Each sink instance starts (fencing older ones) and commits, as a run does.
            try:
                sink.committer().commit(rng)
                outcomes.append("committed")
            except SinkError as exc:
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert sorted(outcomes) in (["CommitConflict", "committed"], ["SinkFenced", "committed"])
        assert sink.plain_committer().committed(sink.topic, 0) == rng.end


@pytest.mark.stack
def test_anchoring_names_a_consumer_that_joined_the_sinks_group(sink: Sink) -> None:
    member = Consumer({**sink.kafka, "group.id": sink.group, "enable.auto.commit": False})
    member.subscribe([sink.topic])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        with pytest.raises(TerminalError, match=f"group={sink.group} has active members"):
            sink.plain_committer().start_at(sink.topic, 0, 1)
    finally:
        member.close()


@pytest.mark.stack
def test_start_at_anchors_only_a_group_with_nothing_committed(sink: Sink) -> None:
    committer = sink.plain_committer()
    assert committer.start_at(sink.topic, 0, 500) is True
    assert committer.start_at(sink.topic, 0, 900) is False
    assert committer.committed(sink.topic, 0) == 500


def test_an_unreachable_broker_is_a_transient_error_naming_the_transactional_id() -> None:
    # Nothing listens on port 1: the same as a broker gone for good.
    kafka = {"bootstrap.servers": "127.0.0.1:1", "log_level": "0"}
    committer = OffsetCommitter(
        kafka, group_id="g", transactional_id="kusto-sink-s-t-0", timeout_s=1.5
    )
    try:
        with pytest.raises(
            SinkError, match="initialising transactional.id=kusto-sink-s-t-0"
        ) as err:
            committer.commit(OffsetRange("t", 0, 0, 1))
        assert err.value.transient
    finally:
        committer.close()
