"""Compare-and-set offset commits, dead letters and fencing against the real local broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

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


@pytest.fixture
def kafka(stack: StackConfig) -> dict[str, str]:
    return {"bootstrap.servers": stack.bootstrap_servers}


@pytest.fixture
def committers(kafka: dict[str, str], unique_name: str) -> Iterator[Callable[..., OffsetCommitter]]:
    made: list[OffsetCommitter] = []

    def make(tid: str | None = f"kusto-sink-{unique_name}") -> OffsetCommitter:
        made.append(OffsetCommitter(kafka, group_id=unique_name, transactional_id=tid))
        return made[-1]

    yield make
    for committer in made:
        committer.close()


def committed_by_plain_consumer(kafka: dict[str, str], group: str, topic: str) -> int:
    consumer = Consumer({**kafka, "group.id": group})
    try:
        (tp,) = consumer.committed([KafkaTopicPartition(topic, 0)], timeout=10)
        return tp.offset
    finally:
        consumer.close()


def bad_record(kafka: dict[str, str], topic: str) -> DeadLetter:
    """A dead letter for a record written to ``topic`` just now."""
    producer = Producer(kafka)
    producer.produce(topic, value=b"bad", partition=0)
    producer.flush(30)
    consumer = Consumer(consumer_config(kafka, "reader"))
    try:
        (low, high) = consumer.get_watermark_offsets(KafkaTopicPartition(topic, 0), timeout=10)
        (batch,) = read_range(consumer, OffsetRange(topic, 0, high - 1, high))
        return DeadLetter(batch[0], ValueError("not JSON"))
    finally:
        consumer.close()


def read_all(kafka: dict[str, str], topic: str, group: str) -> list[Message]:
    consumer = Consumer(consumer_config(kafka, f"{group}-reader"))
    try:
        (low, high) = consumer.get_watermark_offsets(KafkaTopicPartition(topic, 0), timeout=10)
        if high == low:
            return []
        return [
            m for batch in read_range(consumer, OffsetRange(topic, 0, low, high)) for m in batch
        ]
    finally:
        consumer.close()


@pytest.mark.stack
def test_transaction_commits_offset_of_a_group_without_members_and_writes_dead_letters(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    unique_name: str,
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    producer = Producer(kafka)
    for i in range(10):
        producer.produce(
            topic,
            key=b"k%d" % i,
            value=b"\xff not json %d" % i,
            partition=0,
            headers=[("trace", b"\x00\x01")],
            timestamp=1_700_000_000_000 + i,
        )
    producer.flush(30)
    # The sink's own reader is assigned, never subscribed: the group has no members.
    reader = Consumer(consumer_config(kafka, unique_name))
    records = [m for b in read_range(reader, OffsetRange(topic, 0, 0, 10)) for m in b]
    bad = [DeadLetter(records[3], ValueError("not JSON at byte 0"))]

    committer = committers()
    committer.commit(OffsetRange(topic, 0, 0, 10), [(dlq, d) for d in bad])
    reader.close()

    assert committed_by_plain_consumer(kafka, unique_name, topic) == 10
    assert committer.committed(topic, 0) == 10
    (letter,) = read_all(kafka, dlq, unique_name)
    assert (letter.key(), letter.value()) == (b"k3", b"\xff not json 3")
    assert letter.timestamp()[1] == 1_700_000_000_003
    headers = letter.headers()
    assert headers[0] == ("trace", b"\x00\x01")  # the record's own headers come first, unchanged
    assert dict(headers)[SOURCE_TOPIC_HEADER] == topic.encode()
    assert dict(headers)[SOURCE_PARTITION_HEADER] == b"0"
    assert dict(headers)[SOURCE_OFFSET_HEADER] == b"3"
    assert dict(headers)[SOURCE_TIMESTAMP_HEADER] == b"1700000000003"
    assert dict(headers)[ERROR_MESSAGE_HEADER] == b"not JSON at byte 0"


@pytest.mark.stack
def test_commit_never_overwrites_an_offset_that_moved(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    unique_name: str,
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    committer = committers()
    committer.commit(OffsetRange(topic, 0, 0, 100))

    with pytest.raises(CommitConflict) as conflict:
        committer.commit(OffsetRange(topic, 0, 0, 100), [(dlq, bad_record(kafka, topic))])
    message = str(conflict.value)
    assert f"group={unique_name} found committed offset 100, not the range start" in message
    assert "committed before" in message
    assert f"topic={topic} partition=0 offsets=[0,100) committed=100" in message
    with pytest.raises(CommitConflict, match="another run moved it past the range start"):
        committer.commit(OffsetRange(topic, 0, 50, 150))
    with pytest.raises(CommitConflict, match="would skip records that still exist"):
        committer.commit(OffsetRange(topic, 0, 150, 200))

    committer.commit(OffsetRange(topic, 0, 100, 200))
    assert committer.committed(topic, 0) == 200
    assert read_all(kafka, dlq, unique_name) == []  # a refused commit writes no dead letters


@pytest.mark.stack
def test_a_first_commit_may_start_only_where_the_readable_records_start(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic = make_topic(partitions=1)
    producer = Producer(kafka)
    for _ in range(30):
        producer.produce(topic, value=b"v", partition=0)
    producer.flush(30)
    committer = committers()
    # Nothing committed: a range after the low watermark would skip records 0-9.
    with pytest.raises(CommitConflict, match="found committed offset none.*would skip"):
        committer.commit(OffsetRange(topic, 0, 10, 20))
    committer.commit(OffsetRange(topic, 0, 0, 10))

    # Retention deletes 10-19 before the sink reads them: the plan starts at 20.
    admin = AdminClient(kafka)
    for future in admin.delete_records([KafkaTopicPartition(topic, 0, 20)]).values():
        future.result()
    committer.commit(OffsetRange(topic, 0, 20, 30))
    assert committer.committed(topic, 0) == 30


@pytest.mark.stack
def test_a_dead_letter_that_cannot_be_written_aborts_the_commit_and_names_its_topic(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic = make_topic(partitions=1)
    letter = bad_record(kafka, topic)
    committer = committers()
    invalid = "x" * 300  # longer than Kafka allows a topic name

    with pytest.raises(SinkError, match=f"writing 1 dead letter.s. to topic {invalid} failed"):
        committer.commit(OffsetRange(topic, 0, 0, 1), [(invalid, letter)])
    assert committer.committed(topic, 0) is None

    committer.commit(OffsetRange(topic, 0, 0, 1))  # the aborted transaction left no trace
    assert committer.committed(topic, 0) == 1


@pytest.mark.stack
def test_a_newer_committer_with_the_same_transactional_id_fences_the_older(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    unique_name: str,
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic, dlq = make_topic(partitions=1), make_topic(partitions=1)
    letter = bad_record(kafka, topic)
    zombie = committers()
    committers()  # a new run of the same sink and partition starts

    with pytest.raises(SinkFenced, match="another sink instance") as fenced:
        zombie.commit(OffsetRange(topic, 0, 0, 1), [(dlq, letter)])
    assert not fenced.value.transient
    assert committed_by_plain_consumer(kafka, unique_name, topic) < 0  # nothing committed
    assert read_all(kafka, dlq, unique_name) == []


@pytest.mark.stack
def test_two_sinks_racing_on_one_range_cannot_both_commit(
    make_topic: Callable[..., str], committers: Callable[..., OffsetCommitter]
) -> None:
    topic = make_topic(partitions=1)
    for start in (0, 50, 100):
        rng = OffsetRange(topic, 0, start, start + 50)
        outcomes: list[str] = []

        def run(rng: OffsetRange = rng, outcomes: list[str] = outcomes) -> None:
            # Each sink instance starts (fencing older ones) and commits, as a run does.
            try:
                committers().commit(rng)
                outcomes.append("committed")
            except SinkError as exc:
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert sorted(outcomes) in (["CommitConflict", "committed"], ["SinkFenced", "committed"])
        assert committers(None).committed(topic, 0) == rng.end


@pytest.mark.stack
def test_plain_commit_is_a_compare_and_set_too(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    unique_name: str,
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic = make_topic(partitions=1)
    committer = committers(tid=None)
    committer.commit_plain(OffsetRange(topic, 0, 0, 10))
    committer.commit_plain(OffsetRange(topic, 0, 10, 20))
    with pytest.raises(CommitConflict, match="found committed offset 20"):
        committer.commit_plain(OffsetRange(topic, 0, 10, 20))
    assert committed_by_plain_consumer(kafka, unique_name, topic) == 20
    with pytest.raises(TypeError, match="needs a transactional_id"):
        committer.commit(OffsetRange(topic, 0, 20, 30))


@pytest.mark.stack
def test_plain_commit_names_a_consumer_that_joined_the_sinks_group(
    kafka: dict[str, str],
    make_topic: Callable[..., str],
    unique_name: str,
    committers: Callable[..., OffsetCommitter],
) -> None:
    topic = make_topic(partitions=1)
    member = Consumer({**kafka, "group.id": unique_name, "enable.auto.commit": False})
    member.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        with pytest.raises(TerminalError, match=f"group={unique_name} has active members"):
            committers(tid=None).commit_plain(OffsetRange(topic, 0, 0, 1))
    finally:
        member.close()


@pytest.mark.stack
def test_start_at_anchors_only_a_group_with_nothing_committed(
    make_topic: Callable[..., str], committers: Callable[..., OffsetCommitter]
) -> None:
    topic = make_topic(partitions=1)
    committer = committers(tid=None)
    assert committer.start_at(topic, 0, 500) is True
    assert committer.start_at(topic, 0, 900) is False
    assert committer.committed(topic, 0) == 500


def test_an_unreachable_broker_is_a_transient_error_naming_the_transactional_id() -> None:
    # Nothing listens on port 1: the same as a broker gone for good.
    kafka = {"bootstrap.servers": "127.0.0.1:1", "log_level": "0"}
    with pytest.raises(SinkError, match="initialising transactional.id=kusto-sink-s-t-0") as err:
        OffsetCommitter(kafka, group_id="g", transactional_id="kusto-sink-s-t-0", timeout_s=1.5)
    assert err.value.transient
