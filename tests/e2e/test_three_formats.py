"""The sink's headline guarantee on the real stack: three topics of JSON, CSV and Avro,
100 k records, every record exactly once in Kusto and every offset committed; several
topics into one table; one topic into several tables."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from e2e_helpers import create_event_table, event, events_mapping, id_checksum

from pipelines.config import load_settings
from pipelines.runtime import SinkRuntime

pytestmark = pytest.mark.stack

PER_TOPIC = 34_000  # three topics: 102 k records
AVRO_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Reading",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "sensor", "type": "string"},
            {"name": "value", "type": "double"},
        ],
    }
)


def ids_of(kusto, db: str, table: str) -> list[int]:
    return [r["id"] for r in kusto.execute_query(db, f"{table} | project id").primary_results[0]]


def drain(path) -> None:
    with SinkRuntime(load_settings(path)) as runtime:
        for rng in runtime.plan():
            runtime.deliver(rng)
        states = runtime.partition_states()
        lagging = {str(tp): s for tp, s in states.items() if s.committed != s.high}
        assert not lagging, lagging
        assert runtime.plan() == []


def test_json_csv_and_avro_topics_land_exactly_once(
    stack, kusto, kusto_db, make_topic, produce, write_settings
):
    json_topic, csv_topic, avro_topic = (make_topic(partitions=3) for _ in range(3))
    create_event_table(kusto, kusto_db, "Events")
    kusto.execute_mgmt(kusto_db, ".create table Lines (id:long, kind:string, amount:real)")
    kusto.execute_mgmt(kusto_db, ".create table Readings (id:long, sensor:string, value:real)")
    avro_mapping = json.dumps(
        [{"column": c, "Properties": {"Field": c}} for c in ("id", "sensor", "value")]
    )
    kusto.execute_mgmt(
        kusto_db, f".create table Readings ingestion avro mapping 'readings' '{avro_mapping}'"
    )

    produce(json_topic, [event(i) for i in range(PER_TOPIC)])
    produce(csv_topic, [f"{i},kind{i % 5},{i * 0.5}".encode() for i in range(PER_TOPIC)])
    to_avro = AvroSerializer(SchemaRegistryClient({"url": stack.registry_url}), AVRO_SCHEMA)
    context = SerializationContext(avro_topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
    for i in range(PER_TOPIC):
        value = to_avro({"id": i, "sensor": f"s{i % 13}", "value": i / 4}, context)
        producer.produce(avro_topic, value, partition=i % 3)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0

    path = write_settings(
        json_topic,
        [
            {**events_mapping(json_topic, kusto_db), "value_converter": {"kind": "json"}},
            {"topic": csv_topic, "db": kusto_db, "table": "Lines", "format": "csv"},
            {
                "topic": avro_topic,
                "db": kusto_db,
                "table": "Readings",
                "format": "avro",
                "mapping": "readings",
                "value_converter": {"kind": "avro", "schema_registry_url": stack.registry_url},
            },
        ],
        flush_size_bytes=1_000_000,
    )
    drain(path)
    expected = id_checksum(list(range(PER_TOPIC)))
    for table in ("Events", "Lines", "Readings"):
        ids = ids_of(kusto, kusto_db, table)
        assert len(ids) == PER_TOPIC, table
        assert id_checksum(ids) == expected, table
    drain(path)  # a second drain moves nothing
    assert len(ids_of(kusto, kusto_db, "Events")) == PER_TOPIC


def test_several_topics_into_one_table_and_one_topic_into_several(
    kusto, kusto_db, make_topic, produce, write_settings
):
    first, second = make_topic(partitions=2), make_topic(partitions=2)
    for table in ("All", "Copy"):
        create_event_table(kusto, kusto_db, table)
    produce(first, [event(i) for i in range(300)], partitions=2)
    produce(second, [event(i) for i in range(300, 500)], partitions=2)
    path = write_settings(
        first,
        [
            events_mapping(first, kusto_db, "All"),
            events_mapping(second, kusto_db, "All"),
            events_mapping(first, kusto_db, "Copy"),
        ],
        value_converter={"kind": "json"},
        flush_size_bytes=5_000,
    )
    drain(path)
    assert sorted(ids_of(kusto, kusto_db, "All")) == list(range(500))
    assert sorted(ids_of(kusto, kusto_db, "Copy")) == list(range(300))
