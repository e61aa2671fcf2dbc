"""Decoders against a real registry: records written by confluent-kafka's serializers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, timestamp_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.message_factory import GetMessageClass

from devstack.schema_registry.testing import running_registry
from pipelines.decode import SchemaRegistryUnavailable, make_decoder

pytestmark = pytest.mark.stack

TOPIC = "events"
CTX = SerializationContext(TOPIC, MessageField.VALUE)
USER = {
    "type": "record",
    "name": "User",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[SchemaRegistryClient]:
    with running_registry(tmp_path / "registry") as url:
        yield SchemaRegistryClient({"url": url})


def records(values: list[bytes]) -> list[Message]:
    return [Message(topic=TOPIC, partition=0, offset=i, value=v) for i, v in enumerate(values)]


def test_avro_serializer_output_decodes_to_its_bodies(client: SchemaRegistryClient) -> None:
    serialize = AvroSerializer(client, json.dumps(USER))
    values = [serialize({"name": f"u{i}", "age": i}, CTX) for i in range(3)]
    unknown = b"\x00" + (999).to_bytes(4, "big") + values[0][5:]
    chunks, dead = make_decoder("avro", "avro", registry=client).decode(records([*values, unknown]))
    assert chunks[0].payloads == [v[5:] for v in values]
    assert json.loads(chunks[0].framing.schema_json) == USER
    url = client.config()["url"]
    assert str(dead[0].error).startswith(f"unknown schema id 999 (registry {url})")


def test_json_serializer_output_decodes_to_json_lines(client: SchemaRegistryClient) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "title": "N"}
    serialize = JSONSerializer(json.dumps(schema), client)
    values = [serialize({"n": i}, CTX) for i in range(3)]
    chunks, dead = make_decoder("json_schema", "multijson", registry=client, validate=True).decode(
        records(values)
    )
    assert dead == [] and [orjson.loads(p) for p in chunks[0].payloads] == [
        {"n": i} for i in range(3)
    ]


def _reading_class() -> type[ProtoMessage]:
    """``message Reading { string sensor = 1; double value = 2; Timestamp at = 3; }``"""
    file = descriptor_pb2.FileDescriptorProto(
        name="reading.proto", package="iot", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )  # fmt: skip
    message = file.message_type.add(name="Reading")
    field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="sensor", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(name="value", number=2, type=field.TYPE_DOUBLE, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="at", number=3, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
        type_name=".google.protobuf.Timestamp",
    )  # fmt: skip
    pool = DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(file)
    return GetMessageClass(pool.FindMessageTypeByName("iot.Reading"))


def test_protobuf_serializer_output_decodes_to_json_lines(client: SchemaRegistryClient) -> None:
    reading_class = _reading_class()
    serialize = ProtobufSerializer(reading_class, client, {"use.deprecated.format": False})
    reading = reading_class(sensor="t1", value=21.5)
    reading.at.FromSeconds(1_700_000_000)
    chunks, dead = make_decoder("protobuf", "json", registry=client).decode(
        records([serialize(reading, CTX)])
    )
    assert dead == []
    assert orjson.loads(chunks[0].payloads[0]) == {
        "sensor": "t1",
        "value": 21.5,
        "at": "2023-11-14T22:13:20Z",
    }


def test_an_unreachable_registry_is_transient_not_a_dead_letter(tmp_path: Path) -> None:
    with running_registry(tmp_path / "gone") as url:
        pass  # stopped: nothing listens there any more
    decoder = make_decoder("avro", "avro", registry=SchemaRegistryClient({"url": url}))
    with pytest.raises(SchemaRegistryUnavailable) as unavailable:
        decoder.decode(records([b"\x00\x00\x00\x00\x01"]))
    assert unavailable.value.transient
    assert url in str(unavailable.value)
