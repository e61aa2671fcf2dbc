"""Reading exact offset ranges and partition states from the real local broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient

from devstack.stack import StackConfig
from pipelines.errors import KafkaUnavailable, TerminalError
from pipelines.plan import OffsetRange, PartitionState, TopicPartition
from pipelines.read import consumer_config, partition_states, read_range


def test_consumer_config_keeps_overrides_but_not_what_the_reader_relies_on() -> None:
    config = consumer_config(
        {
            "bootstrap.servers": "kafka:9092",
            "security.protocol": "SASL_SSL",
            "enable.auto.commit": "true",
            "max.partition.fetch.bytes": "1048576",
        },
        "connect-orders",
    )
    assert config["bootstrap.servers"] == "kafka:9092"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["max.partition.fetch.bytes"] == "1048576"  # other settings pass through
    assert config["group.id"] == "connect-orders"
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["isolation.level"] == "read_committed"
    assert config["enable.partition.eof"] is True
    # The reader's fetch settings (see READER_DEFAULTS) apply unless overridden.
    assert config["fetch.queue.backoff.ms"] == 10 and config["fetch.wait.max.ms"] == 50
    tuned = consumer_config({"fetch.wait.max.ms": "500"}, "connect-orders")
    assert tuned["fetch.wait.max.ms"] == "500"


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture
def consumer(stack: StackConfig, unique_name: str) -> Iterator[Consumer]:
    consumer = Consumer(
        consumer_config({"bootstrap.servers": stack.bootstrap_servers}, unique_name)
    )
    yield consumer
    consumer.close()


def offsets(batches: list[list]) -> list[int]:  # type: ignore[type-arg]
    return [m.offset() for batch in batches for m in batch]


@pytest.mark.stack
def test_reads_exactly_the_range_in_offset_order(
    stack: StackConfig, make_topic: Callable[..., str], consumer: Consumer
) -> None:
    topic = make_topic(partitions=2)
    produce(stack.bootstrap_servers, topic, [b"v%d" % i for i in range(100)], partition=1)
    produce(stack.bootstrap_servers, topic, [b"other"] * 10, partition=0)

    batches = list(read_range(consumer, OffsetRange(topic, 1, 20, 75), batch_size=16))

    assert offsets(batches) == list(range(20, 75))
    assert max(len(b) for b in batches) <= 16
    assert batches[0][0].value() == b"v20"
    assert {(m.topic(), m.partition()) for b in batches for m in b} == {(topic, 1)}
    assert consumer.assignment() == []  # the consumer is free for the next range
    assert offsets(list(read_range(consumer, OffsetRange(topic, 1, 10, 30)))) == list(range(10, 30))


@pytest.mark.stack
def test_range_ending_in_transaction_markers_and_aborted_records_ends_without_waiting(
    stack: StackConfig, make_topic: Callable[..., str], consumer: Consumer, unique_name: str
) -> None:
    topic = make_topic(partitions=1)
    producer = Producer(
        {"bootstrap.servers": stack.bootstrap_servers, "transactional.id": unique_name}
    )
    producer.init_transactions(30)
    for values, commit in [([b"c0", b"c1", b"c2"], True), ([b"a0", b"a1"], False)]:
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value=value, partition=0)
        producer.flush(30)  # written to the log, so an abort leaves aborted records there
        producer.commit_transaction(30) if commit else producer.abort_transaction(30)
    # Offsets: c0-c2 0-2, commit marker 3, aborted a0-a1 4-5, abort marker 6; high is 7.
    # The abort marker lands asynchronously; until it does, the last stable offset is 4.
    deadline = time.monotonic() + 10
    while True:
        low, high = consumer.get_watermark_offsets(KafkaTopicPartition(topic, 0), timeout=10)
        if high == 7 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (low, high) == (0, 7)

    started = time.monotonic()
    batches = list(read_range(consumer, OffsetRange(topic, 0, 0, high), idle_timeout_s=10))

    assert [m.value() for b in batches for m in b] == [b"c0", b"c1", b"c2"]
    # Position and EOF tell the range is done: no waiting for records that never come.
    assert time.monotonic() - started < 5


@pytest.mark.stack
def test_a_start_deleted_by_retention_is_a_terminal_error_naming_the_offset(
    stack: StackConfig, make_topic: Callable[..., str], consumer: Consumer
) -> None:
    topic = make_topic(partitions=1)
    produce(stack.bootstrap_servers, topic, [b"v"] * 10)
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    for future in admin.delete_records([KafkaTopicPartition(topic, 0, 5)]).values():
        future.result()

    with pytest.raises(TerminalError, match=rf"offset 2 no longer exists \(topic={topic} "):
        list(read_range(consumer, OffsetRange(topic, 0, 2, 10)))


@pytest.mark.stack
def test_an_unreachable_broker_is_a_transient_error_naming_the_partition(
    unique_name: str,
) -> None:
    # Nothing listens on port 1: the same as a broker gone for good.
    consumer = Consumer(
        consumer_config({"bootstrap.servers": "127.0.0.1:1", "log_level": "0"}, unique_name)
    )
    try:
        with pytest.raises(KafkaUnavailable, match=r"at offset 40.*topic=orders partition=3"):
            list(read_range(consumer, OffsetRange("orders", 3, 40, 50), idle_timeout_s=1.5))
    finally:
        consumer.close()


@pytest.mark.stack
def test_partition_states_give_committed_offsets_and_watermarks(
    stack: StackConfig, make_topic: Callable[..., str], unique_name: str
) -> None:
    topic = make_topic(partitions=3)
    produce(stack.bootstrap_servers, topic, [b"v"] * 30, partition=0)
    produce(stack.bootstrap_servers, topic, [b"v"] * 5, partition=1)
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    for future in admin.delete_records([KafkaTopicPartition(topic, 0, 10)]).values():
        future.result()
    committer = Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": unique_name})
    committer.commit(offsets=[KafkaTopicPartition(topic, 0, 25)], asynchronous=False)
    committer.close()

    states = partition_states(admin, unique_name, [topic])

    assert states == {
        TopicPartition(topic, 0): PartitionState(committed=25, low=10, high=30),
        TopicPartition(topic, 1): PartitionState(committed=None, low=0, high=5),
        TopicPartition(topic, 2): PartitionState(committed=None, low=0, high=0),
    }


@pytest.mark.stack
def test_partition_states_of_a_missing_topic_name_it(stack: StackConfig, unique_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    with pytest.raises(TerminalError, match=f"topic=missing_{unique_name} cannot be read"):
        partition_states(admin, unique_name, [f"missing_{unique_name}"])
