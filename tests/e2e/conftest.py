"""Fixtures of the sink's end-to-end tests (Kusto and settings fixtures: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from azure.kusto.data import KustoClient
from confluent_kafka import Producer
from e2e_helpers import create_event_table, event, events_mapping

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


@pytest.fixture
def json_events(
    kusto: KustoClient,
    kusto_db: str,
    make_topic: Callable[..., str],
    produce: Callable[..., None],
    write_settings: Callable[..., Path],
) -> Callable[..., tuple[str, Path]]:
    """``json_events(partitions, records, **settings)``: a topic holding ``records`` JSON
    events spread over its ``partitions``, an ``Events`` table, and the settings file of a
    sink mapping one to the other (``settings`` override the file's)."""

    def make(partitions: int, records: int, **settings: object) -> tuple[str, Path]:
        topic = make_topic(partitions=partitions)
        create_event_table(kusto, kusto_db, "Events")
        produce(topic, [event(i) for i in range(records)], partitions=partitions)
        path = write_settings(
            topic, [events_mapping(topic, kusto_db)], value_converter={"kind": "json"}, **settings
        )
        return topic, path

    return make
