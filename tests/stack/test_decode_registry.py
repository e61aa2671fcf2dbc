"""Decoders on the local stack: records written by confluent-kafka's serializers into the
devstack's Kafka, with schemas in the devstack's registry, read back by the sink's reader."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, timestamp_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.message_factory import GetMessageClass

from devstack.schema_registry.testing import running_registry
from devstack.stack import StackConfig
from pipelines.decode import SchemaRegistryUnavailable, make_decoder
from pipelines.plan import OffsetRange
from pipelines.read import consumer_config, read_range

pytestmark = pytest.mark.stack

USER = {
    "type": "record",
    "name": "User",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
}


@pytest.fixture
def client(stack: StackConfig) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.registry_url})


@pytest.fixture
def round_trip(
    stack: StackConfig, make_topic: Callable[..., str], unique_name: str
) -> Callable[[Callable[[SerializationContext], list[bytes]]], list[Message]]:
    """Serialize values for a fresh topic, produce them, and read them back as the sink does."""

    def run(serialize_all: Callable[[SerializationContext], list[bytes]]) -> list[Message]:
        topic = make_topic(partitions=1)
        values = serialize_all(SerializationContext(topic, MessageField.VALUE))
        producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
        for value in values:
            producer.produce(topic, value=value, partition=0)
        assert producer.flush(30) == 0
        consumer = Consumer(
            consumer_config({"bootstrap.servers": stack.bootstrap_servers}, unique_name)
        )
        try:
            rng = OffsetRange(topic, 0, 0, len(values))
            return [m for batch in read_range(consumer, rng) for m in batch]
        finally:
            consumer.close()

    return run


def test_avro_serializer_output_decodes_to_its_bodies(
    client: SchemaRegistryClient, round_trip: Callable[..., list[Message]]
) -> None:
    serialize = AvroSerializer(client, json.dumps(USER))

    def values(ctx: SerializationContext) -> list[bytes]:
        written = [serialize({"name": f"u{i}", "age": i}, ctx) for i in range(3)]
        return [*written, b"\x00" + (99_999).to_bytes(4, "big") + written[0][5:]]

    records = round_trip(values)
    chunks, dead = make_decoder("avro", "avro", registry=client).decode(records)
    assert chunks[0].offsets == [0, 1, 2]
    assert chunks[0].payloads == [m.value()[5:] for m in records[:3]]
    assert json.loads(chunks[0].framing.schema_json) == USER
    assert str(dead[0].error).startswith(
        f"unknown schema id 99999 (registry {client.config()['url']})"
    )
    assert f"topic={records[3].topic()} partition=0 offset=3" in str(dead[0].error)


def test_json_serializer_output_decodes_to_json_lines(
    client: SchemaRegistryClient, round_trip: Callable[..., list[Message]]
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "title": "N"}
    serialize = JSONSerializer(json.dumps(schema), client)
    records = round_trip(lambda ctx: [serialize({"n": i}, ctx) for i in range(3)])
    chunks, dead = make_decoder("json_schema", "multijson", registry=client, validate=True).decode(
        records
    )
    assert dead == []
    assert [orjson.loads(p) for p in chunks[0].payloads] == [{"n": i} for i in range(3)]


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


def test_protobuf_serializer_output_decodes_to_json_lines(
    client: SchemaRegistryClient, round_trip: Callable[..., list[Message]]
) -> None:
    reading_class = _reading_class()
    serialize = ProtobufSerializer(reading_class, client, {"use.deprecated.format": False})
    reading = reading_class(sensor="t1", value=21.5)
    reading.at.FromSeconds(1_700_000_000)
    records = round_trip(lambda ctx: [serialize(reading, ctx)])
    chunks, dead = make_decoder("protobuf", "json", registry=client).decode(records)
    assert dead == []
    assert orjson.loads(chunks[0].payloads[0]) == {
        "sensor": "t1",
        "value": 21.5,
        "at": "2023-11-14T22:13:20Z",
    }


def test_protobuf_registered_as_proto_text_decodes(
    client: SchemaRegistryClient, round_trip: Callable[..., list[Message]]
) -> None:
    """What a Java or Go producer registers: .proto text, not a serialized descriptor."""
    text = (
        'syntax = "proto3"; package iot; message Reading { string sensor = 1; double value = 2; }'
    )

    def values(ctx: SerializationContext) -> list[bytes]:
        schema_id = client.register_schema(f"{ctx.topic}-value", Schema(text, "PROTOBUF"))
        serialized = client.get_schema(schema_id, fmt="serialized").schema_str
        pool = DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized)))
        reading = GetMessageClass(pool.FindMessageTypeByName("iot.Reading"))(sensor="t2", value=3.5)
        return [b"\x00" + schema_id.to_bytes(4, "big") + b"\x00" + reading.SerializeToString()]

    chunks, dead = make_decoder("protobuf", "json", registry=client).decode(round_trip(values))
    assert dead == [] and orjson.loads(chunks[0].payloads[0]) == {"sensor": "t2", "value": 3.5}


def test_an_unreachable_registry_is_transient_not_a_dead_letter(tmp_path: Path) -> None:
    with running_registry(tmp_path / "gone") as url:
        pass  # stopped: nothing listens there any more
    decoder = make_decoder("avro", "avro", registry=SchemaRegistryClient({"url": url}))
    with pytest.raises(SchemaRegistryUnavailable) as unavailable:
        decoder.decode([Message(topic="t", partition=0, offset=0, value=b"\x00\x00\x00\x00\x01")])
    assert unavailable.value.transient
    assert url in str(unavailable.value)
