"""On the local stack: writer schemas gain fields, the table and its mapping follow (opt-in)."""

from __future__ import annotations

import base64
import io
import json
import logging

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from parity_helpers import drain, rows

from pipelines.errors import DecodeError

pytestmark = pytest.mark.stack

READING_V1 = {
    "type": "record",
    "name": "Reading",
    "fields": [{"name": "id", "type": "long"}, {"name": "sensor", "type": "string"}],
}
READING_V2 = {
    **READING_V1,
    "fields": [
        *READING_V1["fields"],
        {"name": "score", "type": ["null", "double"], "default": None},
    ],
}


def columns(kusto, db: str, table: str) -> dict[str, str]:
    response = kusto.execute_mgmt(db, f".show table {table} schema as json").primary_results[0]
    return {c["Name"]: c["CslType"] for c in json.loads(response[0]["Schema"])["OrderedColumns"]}


def mapped_fields(kusto, db: str, table: str, kind: str) -> list[str]:
    response = kusto.execute_mgmt(db, f".show table {table} ingestion {kind} mappings")
    return [entry["column"] for entry in json.loads(response.primary_results[0][0]["Mapping"])]


def avro_values(registry: SchemaRegistryClient, subject: str, schema: dict, records: list) -> list:
    schema_id = registry.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
    parsed = fastavro.parse_schema(schema)
    values = []
    for record in records:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, record)
        values.append((None, b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue(), None))
    return values


@pytest.fixture
def registry(stack) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.registry_url})


@pytest.fixture
def readings(stack, kusto, kusto_db, make_topic, settings_file):
    """An Avro topic into table Readings(id, sensor) with avro mapping 'r'; settings factory."""
    topic = make_topic(partitions=1)
    kusto.execute_mgmt(kusto_db, ".create table Readings (id:long, sensor:string)")
    mapping = json.dumps([{"column": c, "Properties": {"Field": c}} for c in ("id", "sensor")])
    kusto.execute_mgmt(kusto_db, f".create table Readings ingestion avro mapping 'r' '{mapping}'")

    def settings(**mapping_options: object):
        return settings_file(
            topic,
            [
                {
                    "topic": topic,
                    "db": kusto_db,
                    "table": "Readings",
                    "format": "avro",
                    "mapping": "r",
                    **mapping_options,
                }
            ],
            value_converter={"kind": "avro", "schema_registry_url": stack.registry_url},
        )

    return topic, settings


def test_avro_schema_gains_a_field_and_old_and_new_records_land(
    kusto, kusto_db, registry, produce, readings
) -> None:
    topic, settings = readings
    subject = f"{topic}-value"
    path = settings(evolve_schema=True)
    produce(topic, avro_values(registry, subject, READING_V1, [{"id": 1, "sensor": "a"}]))
    drain(path)
    produce(
        topic,
        avro_values(registry, subject, READING_V1, [{"id": 2, "sensor": "b"}])
        + avro_values(registry, subject, READING_V2, [{"id": 3, "sensor": "c", "score": 0.5}]),
    )
    drain(path)
    assert columns(kusto, kusto_db, "Readings") == {
        "id": "long",
        "sensor": "string",
        "score": "real",
    }
    assert mapped_fields(kusto, kusto_db, "Readings", "avro") == ["id", "sensor", "score"]
    got = rows(kusto, kusto_db, "Readings | order by id asc")
    assert [(r["id"], r["sensor"], r["score"]) for r in got] == [
        (1, "a", None),
        (2, "b", None),
        (3, "c", 0.5),
    ]


def test_without_the_opt_in_new_fields_are_named_in_a_warning(
    kusto, kusto_db, registry, produce, readings, caplog
) -> None:
    topic, settings = readings
    produce(
        topic,
        avro_values(
            registry, f"{topic}-value", READING_V2, [{"id": 1, "sensor": "a", "score": 1.0}]
        ),
    )
    with caplog.at_level(logging.WARNING, logger="pipelines.evolve"):
        drain(settings())
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pipelines.evolve"]
    assert "no column of" in warning and "Readings" in warning and ": score;" in warning
    assert columns(kusto, kusto_db, "Readings") == {"id": "long", "sensor": "string"}
    assert rows(kusto, kusto_db, "Readings | count")[0]["Count"] == 1


def test_a_field_whose_type_changed_incompatibly_stops_the_partition(
    registry, produce, readings
) -> None:
    topic, settings = readings
    changed = {**READING_V1, "fields": [{"name": "id", "type": "string"}, READING_V1["fields"][1]]}
    # another subject: the registry's own compatibility check would refuse it on this one
    produce(topic, avro_values(registry, f"{topic}-changed", changed, [{"id": "x", "sensor": "a"}]))
    with pytest.raises(
        DecodeError, match=r"changed incompatibly .*field id is string but column id is long"
    ):
        drain(settings(evolve_schema=True))


def _proto_values(registry: SchemaRegistryClient, subject: str, text: str, messages: list) -> list:
    schema_id = registry.register_schema(subject, Schema(text, "PROTOBUF"))
    serialized = registry.get_schema(schema_id, fmt="serialized").schema_str
    pool = DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized)))
    reading = GetMessageClass(pool.FindMessageTypeByName("iot.Reading"))
    header = b"\x00" + schema_id.to_bytes(4, "big") + b"\x00"
    return [(None, header + reading(**m).SerializeToString(), None) for m in messages]


PROTO_V1 = 'syntax = "proto3"; package iot; message Reading { int32 id = 1; string sensor = 2; }'
PROTO_V2 = (
    'syntax = "proto3"; package iot; '
    "message Reading { int32 id = 1; string sensor = 2; double value = 3; }"
)


def test_protobuf_schema_gains_a_field_and_old_and_new_records_land(
    stack, kusto, kusto_db, registry, make_topic, produce, settings_file
) -> None:
    topic = make_topic(partitions=1)
    kusto.execute_mgmt(kusto_db, ".create table Protos (id:int, sensor:string)")
    mapping = json.dumps(
        [{"column": c, "Properties": {"Path": f"$.{c}"}} for c in ("id", "sensor")]
    )
    kusto.execute_mgmt(kusto_db, f".create table Protos ingestion json mapping 'p' '{mapping}'")
    subject = f"{topic}-value"
    produce(
        topic,
        _proto_values(registry, subject, PROTO_V1, [{"id": 1, "sensor": "a"}])
        + _proto_values(registry, subject, PROTO_V2, [{"id": 2, "sensor": "b", "value": 2.5}]),
    )
    drain(
        settings_file(
            topic,
            [
                {
                    "topic": topic,
                    "db": kusto_db,
                    "table": "Protos",
                    "format": "multijson",
                    "mapping": "p",
                    "evolve_schema": True,
                }
            ],
            value_converter={"kind": "protobuf", "schema_registry_url": stack.registry_url},
        )  # fmt: skip
    )
    assert columns(kusto, kusto_db, "Protos") == {"id": "int", "sensor": "string", "value": "real"}
    assert mapped_fields(kusto, kusto_db, "Protos", "json") == ["id", "sensor", "value"]
    got = rows(kusto, kusto_db, "Protos | order by id asc")
    assert [(r["id"], r["sensor"], r["value"]) for r in got] == [(1, "a", None), (2, "b", 2.5)]


def test_avro_records_carry_key_headers_and_metadata_columns(
    kusto, kusto_db, registry, produce, readings
) -> None:
    topic, settings = readings
    kusto.execute_mgmt(
        kusto_db, ".create-merge table Readings (k:string, h:dynamic, o:long, at:datetime)"
    )
    fields = ("id", "sensor", "k", "h", "o", "at")
    mapping = json.dumps([{"column": c, "Properties": {"Field": c}} for c in fields])
    kusto.execute_mgmt(
        kusto_db, f".create-or-alter table Readings ingestion avro mapping 'r' '{mapping}'"
    )
    values = avro_values(
        registry, f"{topic}-value", READING_V1, [{"id": i, "sensor": "s"} for i in range(2)]
    )
    produce(
        topic,
        [(b"key", v, [("trace", b"t1")]) for _, v, _ in values],
        timestamp_ms=1_764_288_000_123,
    )
    drain(settings(metadata_columns={"key": "k", "headers": "h", "offset": "o", "timestamp": "at"}))
    got = rows(kusto, kusto_db, "Readings | order by id asc")
    assert [(r["id"], r["k"], r["h"], r["o"]) for r in got] == [
        (0, "key", {"trace": "t1"}, 0),
        (1, "key", {"trace": "t1"}, 1),
    ]
    assert all(r["at"].isoformat() == "2025-11-28T00:00:00.123000+00:00" for r in got)


def _json_schema_values(registry, subject: str, properties: dict, records: list) -> list:
    schema = {"type": "object", "properties": properties}
    schema_id = registry.register_schema(subject, Schema(json.dumps(schema), "JSON"))
    header = b"\x00" + schema_id.to_bytes(4, "big")
    return [(None, header + json.dumps(record).encode(), None) for record in records]


def test_json_schema_gains_a_field_and_old_and_new_records_land(
    stack, kusto, kusto_db, registry, make_topic, produce, settings_file
) -> None:
    topic = make_topic(partitions=1)
    kusto.execute_mgmt(kusto_db, ".create table Docs (id:long)")
    mapping = json.dumps([{"column": "id", "Properties": {"Path": "$.id"}}])
    kusto.execute_mgmt(kusto_db, f".create table Docs ingestion json mapping 'd' '{mapping}'")
    v1 = {"id": {"type": "integer"}}
    v2 = {**v1, "at": {"type": "string", "format": "date-time"}}
    produce(
        topic,
        _json_schema_values(registry, f"{topic}-value", v1, [{"id": 1}])
        + _json_schema_values(
            registry, f"{topic}-value", v2, [{"id": 2, "at": "2026-01-02T03:04:05Z"}]
        ),
    )
    mapping_entry = {"topic": topic, "db": kusto_db, "table": "Docs", "format": "multijson"}
    drain(
        settings_file(
            topic,
            [{**mapping_entry, "mapping": "d", "evolve_schema": True}],
            value_converter={"kind": "json_schema", "schema_registry_url": stack.registry_url},
        )
    )
    assert columns(kusto, kusto_db, "Docs") == {"id": "long", "at": "datetime"}
    got = rows(kusto, kusto_db, "Docs | order by id asc | extend at=tostring(at)")
    assert [r["id"] for r in got] == [1, 2]
    assert got[0]["at"] in ("", None) and got[1]["at"].startswith("2026-01-02T03:04:05")
