"""Fixtures of the sink's end-to-end tests (Kusto and settings fixtures: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from devstack.stack import StackConfig

pytestmark = pytest.mark.stack


@pytest.fixture
def produce(stack: StackConfig) -> Callable[..., None]:
    """``produce(topic, values, partitions=3)``: values spread round-robin by partition."""

    def send(topic: str, values: list[bytes | None], partitions: int = 3) -> None:
        producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
        for i, value in enumerate(values):
            producer.produce(topic, value=value, key=str(i).encode(), partition=i % partitions)
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(30) == 0

    return send
