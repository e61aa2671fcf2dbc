"""Kafka of the local stack: what a client sees."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.kafka import CLASS_ARCHIVE
from devstack.stack import StackConfig, down, up

pytestmark = pytest.mark.stack


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0, "records left undelivered"


def consume_all(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=count, timeout=0.5):
                assert message.error() is None, message.error()
                values.append(message.value())
            if len(values) >= count:
                break
    finally:
        consumer.close()
    return values


def test_topic_round_trip(stack: StackConfig, make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=3)
    values = [f"record-{i}".encode() for i in range(100)]

    produce(stack.bootstrap_servers, topic, values)

    assert consume_all(stack.bootstrap_servers, topic, len(values)) == values


def test_broker_restart_keeps_data(stack: StackConfig, make_topic: Callable[..., str]) -> None:
    topic = make_topic(partitions=1)
    values = [f"kept-{i}".encode() for i in range(10)]
    produce(stack.bootstrap_servers, topic, values)

    assert up(stack, only=["kafka"]) == [], "kafka should already be running"
    assert down(stack, only=["kafka"]) == ["kafka"]
    assert up(stack, only=["kafka"]) == ["kafka"]

    assert consume_all(stack.bootstrap_servers, topic, len(values)) == values


def test_broker_starts_from_its_class_archive(stack: StackConfig) -> None:
    archive = stack.kafka_lib_dir / CLASS_ARCHIVE
    assert archive.exists(), f"{archive} missing: see {archive}.failed and the fetch output"
