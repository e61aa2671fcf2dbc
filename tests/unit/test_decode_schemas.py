"""Decoders of the Confluent wire format (Avro, JSON Schema, Protobuf), with in-memory schemas."""

from __future__ import annotations

import base64
import io
import json
import random
import struct
from pathlib import Path

import fastavro
import orjson
import pytest
from confluent_kafka import Message
from google.protobuf import descriptor_pb2, timestamp_pb2
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.message_factory import GetMessageClass

from pipelines.decode import MappingLookup, SchemaReference, WriterSchema, make_decoder
from pipelines.records import AvroFraming, LineFraming

USER = {
    "type": "record",
    "name": "User",
    "namespace": "demo",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
}
CLICK = {"type": "record", "name": "Click", "fields": [{"name": "url", "type": "string"}]}


def records(*values: bytes | None, start: int = 0) -> list[Message]:
    return [
        Message(topic="events", partition=1, offset=start + i, value=value)
        for i, value in enumerate(values)
    ]


def framed(schema_id: int, body: bytes) -> bytes:
    return struct.pack(">bI", 0, schema_id) + body


def avro_body(schema: dict, datum: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


def reasons(dead_letters: list) -> dict[int, str]:
    return {letter.record.offset(): str(letter.error) for letter in dead_letters}


# -- Avro ------------------------------------------------------------------------------

AVRO_SCHEMAS = {1: ("AVRO", json.dumps(USER)), 2: ("AVRO", json.dumps(CLICK)), 9: ("JSON", "{}")}


def test_avro_bodies_pass_unchanged_grouped_by_schema_id() -> None:
    ada, bob = (
        avro_body(USER, {"name": "ada", "age": 36}),
        avro_body(USER, {"name": "bob", "age": 7}),
    )
    click = avro_body(CLICK, {"url": "/home"})
    values = [framed(1, ada), framed(1, bob), framed(2, click), framed(1, ada)]
    chunks, dead = make_decoder("avro", "apacheavro", registry=AVRO_SCHEMAS).decode(
        records(*values)
    )
    assert dead == []
    assert [(c.offsets, c.payloads) for c in chunks] == [
        ([0, 1], [ada, bob]),
        ([2], [click]),
        ([3], [ada]),
    ]
    assert chunks[0].format == "apacheavro"
    assert isinstance(chunks[0].framing, AvroFraming)
    assert json.loads(chunks[0].framing.schema_json) == USER
    writer = fastavro.parse_schema(json.loads(chunks[0].framing.schema_json))
    assert fastavro.schemaless_reader(io.BytesIO(chunks[0].payloads[1]), writer, None) == {
        "name": "bob",
        "age": 7,
    }


def test_avro_bad_headers_and_unknown_ids_are_dead_lettered_without_splitting_chunks() -> None:
    ada = avro_body(USER, {"name": "ada", "age": 36})
    values = [framed(1, ada), b"\x01" + framed(1, ada)[1:], b"\x00\x00", framed(42, ada), None]
    values += [framed(9, b"{}"), framed(1, ada)]
    chunks, dead = make_decoder("avro", "avro", registry=AVRO_SCHEMAS).decode(records(*values))
    assert [c.offsets for c in chunks] == [[0, 6]]
    found = reasons(dead)
    assert found[1].startswith("bad magic byte 0x01, expected 0x00")
    assert found[2].startswith("truncated Confluent header: 2 bytes")
    assert found[3].startswith("unknown schema id 42 (in-memory schemas)")
    assert "topic=events partition=1 offset=3" in found[3]
    assert found[4].startswith("tombstone")
    assert found[5].startswith("schema id 9 unusable: schema id 9 is a JSON schema, expected AVRO")


def test_avro_run_of_one_schema_with_a_tombstone() -> None:
    ada = avro_body(USER, {"name": "ada", "age": 36})
    values = [framed(1, ada), None, framed(1, ada)]
    chunks, dead = make_decoder("avro", "avro", registry=AVRO_SCHEMAS).decode(records(*values))
    assert [(c.offsets, c.payloads) for c in chunks] == [([0, 2], [ada, ada])]
    assert reasons(dead)[1].startswith("tombstone")


def test_avro_corrupt_body_passes_unless_validation_is_asked_for() -> None:
    good = avro_body(USER, {"name": "ada", "age": 36})
    corrupt = b"\x7f" + good  # a string length far beyond the body
    values = [framed(1, good), framed(1, corrupt)]
    chunks, dead = make_decoder("avro", "avro", registry=AVRO_SCHEMAS).decode(records(*values))
    assert chunks[0].offsets == [0, 1] and dead == []
    chunks, dead = make_decoder("avro", "avro", registry=AVRO_SCHEMAS, validate=True).decode(
        records(*values)
    )
    assert chunks[0].offsets == [0]
    assert reasons(dead)[1].startswith("Avro body does not match schema id 1")


def test_avro_schema_with_references_becomes_standalone() -> None:
    address = {"type": "record", "name": "Address", "namespace": "demo",
               "fields": [{"name": "city", "type": "string"}]}  # fmt: skip
    person = {"type": "record", "name": "Person", "namespace": "demo", "fields": [
        {"name": "home", "type": "demo.Address"}, {"name": "work", "type": "Address"}]}  # fmt: skip
    ref = SchemaReference("demo.Address", "address", 1)
    registry = MappingLookup(
        {7: WriterSchema("AVRO", json.dumps(person), (ref,))},
        {("address", 1): ("AVRO", json.dumps(address))},
    )
    body = avro_body(
        {
            **person,
            "fields": [{"name": "home", "type": address}, {"name": "work", "type": "Address"}],
        },
        {"home": {"city": "Oslo"}, "work": {"city": "Bergen"}},
    )
    chunks, dead = make_decoder("avro", "avro", registry=registry).decode(records(framed(7, body)))
    assert dead == []
    standalone = fastavro.parse_schema(json.loads(chunks[0].framing.schema_json))
    assert fastavro.schemaless_reader(io.BytesIO(chunks[0].payloads[0]), standalone, None) == {
        "home": {"city": "Oslo"},
        "work": {"city": "Bergen"},
    }


def test_avro_referenced_type_used_before_its_enclosing_type_is_defined_once() -> None:
    kind = {"type": "enum", "name": "Kind", "symbols": ["HOME", "WORK"]}
    address = {"type": "record", "name": "Address", "namespace": "geo",
               "fields": [{"name": "kind", "type": kind}]}  # fmt: skip
    person = {"type": "record", "name": "Person", "fields": [
        {"name": "k", "type": "geo.Kind"}, {"name": "a", "type": "geo.Address"}]}  # fmt: skip
    registry = MappingLookup(
        {8: WriterSchema("AVRO", json.dumps(person), (SchemaReference("geo", "geo", 1),))},
        {("geo", 1): ("AVRO", json.dumps(address))},
    )
    body = b"\x02\x00"  # k = WORK, a.kind = HOME
    chunks, dead = make_decoder("avro", "avro", registry=registry).decode(records(framed(8, body)))
    assert dead == []
    standalone = fastavro.parse_schema(json.loads(chunks[0].framing.schema_json))
    assert fastavro.schemaless_reader(io.BytesIO(body), standalone, None) == {
        "k": "WORK",
        "a": {"kind": "HOME"},
    }


# -- JSON Schema --------------------------------------------------------------------------

JSON_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
}
JSON_SCHEMAS = {5: ("JSON", json.dumps(JSON_SCHEMA)), 1: ("AVRO", json.dumps(USER))}


def test_json_schema_strips_the_header_and_keeps_the_text() -> None:
    values = [
        framed(5, b'{"n": 1}'),
        framed(5, b'{"n": "x"}'),
        framed(5, b'{"n": '),
        framed(1, b"{}"),
    ]
    chunks, dead = make_decoder("json_schema", "json", registry=JSON_SCHEMAS).decode(
        records(*values)
    )
    assert chunks[0].payloads == [b'{"n": 1}', b'{"n": "x"}']
    assert chunks[0].framing == LineFraming()
    found = reasons(dead)
    assert found[2].startswith("invalid JSON")
    assert found[3].startswith("schema id 1 unusable: schema id 1 is a AVRO schema")


def test_json_schema_validation_is_opt_in() -> None:
    values = [framed(5, b'{"n": 1}'), framed(5, b'{"n": "x"}'), framed(5, b"{}")]
    chunks, dead = make_decoder("json_schema", "json", registry=JSON_SCHEMAS, validate=True).decode(
        records(*values)
    )
    assert chunks[0].offsets == [0]
    found = reasons(dead)
    assert found[1].startswith("does not match its JSON Schema at n: 'x' is not of type 'integer'")
    assert found[2].startswith("does not match its JSON Schema at (root): 'n' is a required")


# -- Protobuf ------------------------------------------------------------------------------


def _order_file() -> descriptor_pb2.FileDescriptorProto:
    """``message Order { string id = 1; int64 cents = 2; repeated string tags = 3;
    google.protobuf.Timestamp at = 4; message Line { string sku = 1; int32 qty = 2; } }``"""
    file = descriptor_pb2.FileDescriptorProto(
        name="order.proto", package="shop", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )  # fmt: skip
    order = file.message_type.add(name="Order")
    field = descriptor_pb2.FieldDescriptorProto
    order.field.add(name="id", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    order.field.add(name="cents", number=2, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    order.field.add(name="tags", number=3, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    order.field.add(
        name="at", number=4, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
        type_name=".google.protobuf.Timestamp",
    )  # fmt: skip
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    line.field.add(name="qty", number=2, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    return file


def _classes() -> tuple[type[ProtoMessage], type[ProtoMessage]]:
    pool = DescriptorPool()
    timestamp = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    pool.Add(_order_file())
    order = pool.FindMessageTypeByName("shop.Order")
    return GetMessageClass(order), GetMessageClass(order.nested_types_by_name["Line"])


PROTO_SCHEMAS = {
    3: ("PROTOBUF", base64.b64encode(_order_file().SerializeToString()).decode()),
    4: ("PROTOBUF", 'syntax = "proto3"; message Order { string id = 1; }'),
}


def test_protobuf_messages_become_json_lines() -> None:
    order_class, line_class = _classes()
    order = order_class(id="o-1", cents=1250, tags=["gift"])
    order.at.FromSeconds(1_700_000_000)
    line = line_class(sku="s-9")
    values = [
        framed(3, b"\x00" + order.SerializeToString()),  # [0], the compact form
        framed(3, b"\x04\x00\x00" + line.SerializeToString()),  # [0, 0]: Order.Line
        framed(3, b"\x00" + b"\xff\xff"),
        framed(3, b"\x02\x08" + b""),  # [4]: no fifth message
        framed(4, b"\x00"),
    ]
    chunks, dead = make_decoder("protobuf", "json", registry=PROTO_SCHEMAS).decode(records(*values))
    assert chunks[0].offsets == [0, 1]
    assert [orjson.loads(p) for p in chunks[0].payloads] == [
        {"id": "o-1", "cents": "1250", "tags": ["gift"], "at": "2023-11-14T22:13:20Z"},
        {"sku": "s-9", "qty": 0},
    ]
    found = reasons(dead)
    assert found[2].startswith("Protobuf message of schema id 3:")
    assert found[3].startswith("Protobuf message of schema id 3: message index 4 at depth 0")
    assert "registry returned .proto text" in found[4]


def test_protobuf_values_json_cannot_carry_are_dead_lettered() -> None:
    order_class, _ = _classes()
    order = order_class(id="o-2")
    order.at.seconds = 10**13  # after year 9999: no RFC 3339 text for it
    value = framed(3, b"\x00" + order.SerializeToString())
    _, dead = make_decoder("protobuf", "json", registry=PROTO_SCHEMAS).decode(records(value))
    assert "Timestamp is not valid" in reasons(dead)[0]


@pytest.mark.parametrize("value", [b"\x00\x00\x00\x00\x03", b"\x00\x00\x00\x00\x03\x02"])
def test_protobuf_truncated_message_indexes_are_dead_lettered(value: bytes) -> None:
    _, dead = make_decoder("protobuf", "json", registry=PROTO_SCHEMAS).decode(records(value))
    assert reasons(dead)[0].startswith("truncated Protobuf message indexes")


# -- Protobuf → JSON: the fast converter writes what MessageToDict writes --------------------


def _rich_file() -> descriptor_pb2.FileDescriptorProto:
    """Every scalar type, enums, nesting, repeated, maps, oneof, proto3 optional, WKTs."""
    f = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="rich.proto", package="t", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto",
                    "google/protobuf/struct.proto", "google/protobuf/duration.proto"],
    )  # fmt: skip
    file.enum_type.add(name="Color").value.extend(
        [descriptor_pb2.EnumValueDescriptorProto(name=n, number=i) for i, n in enumerate("RGB")]
    )
    rich = file.message_type.add(name="Rich")
    scalars = ["INT32", "INT64", "UINT32", "UINT64", "SINT32", "SINT64", "FIXED32", "FIXED64",
               "SFIXED32", "SFIXED64", "FLOAT", "DOUBLE", "BOOL", "STRING", "BYTES"]  # fmt: skip
    for number, kind in enumerate(scalars, 1):
        rich.field.add(name=kind.lower(), number=number, type=getattr(f, f"TYPE_{kind}"))
        rich.field.add(
            name=f"many_{kind.lower()}", number=100 + number,
            type=getattr(f, f"TYPE_{kind}"), label=f.LABEL_REPEATED,
        )  # fmt: skip
    messages = {"color": ".t.Color", "child": ".t.Rich", "at": ".google.protobuf.Timestamp",
                "wrapped": ".google.protobuf.Int64Value", "blob": ".google.protobuf.Struct",
                "took": ".google.protobuf.Duration"}  # fmt: skip
    for number, (name, type_name) in enumerate(messages.items(), 40):
        kind = f.TYPE_ENUM if name == "color" else f.TYPE_MESSAGE
        rich.field.add(name=name, number=number, type=kind, type_name=type_name)
    rich.field.add(name="children", number=50, type=f.TYPE_MESSAGE, type_name=".t.Rich",
                   label=f.LABEL_REPEATED)  # fmt: skip
    rich.field.add(name="colors", number=51, type=f.TYPE_ENUM, type_name=".t.Color",
                   label=f.LABEL_REPEATED)  # fmt: skip
    for number, (key, value, value_type) in enumerate(
        [(f.TYPE_STRING, f.TYPE_INT64, ""), (f.TYPE_INT32, f.TYPE_MESSAGE, ".t.Rich"),
         (f.TYPE_BOOL, f.TYPE_ENUM, ".t.Color")], 60,
    ):  # fmt: skip
        entry = rich.nested_type.add(name=f"M{number}Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key)
        entry.field.add(name="value", number=2, type=value)
        if value_type:
            entry.field[1].type_name = value_type
        rich.field.add(name=f"m{number}", number=number, type=f.TYPE_MESSAGE,
                       type_name=f".t.Rich.M{number}Entry", label=f.LABEL_REPEATED)  # fmt: skip
    rich.oneof_decl.add(name="choice")
    rich.field.add(name="a", number=70, type=f.TYPE_STRING, oneof_index=0)
    rich.field.add(name="c", number=71, type=f.TYPE_INT32, oneof_index=0)
    rich.oneof_decl.add(name="_opt")
    rich.field.add(name="opt", number=72, type=f.TYPE_INT32, oneof_index=1, proto3_optional=True)
    for field in rich.field:
        if field.label == 0:
            field.label = f.LABEL_OPTIONAL
    return file


def _random_scalar(rnd: random.Random, kind: str) -> object:
    specials = [float("nan"), float("inf"), float("-inf"), 0.1, 1e-30, 3.4e38]
    return {
        "INT32": lambda: rnd.randrange(-(2**31), 2**31),
        "SINT32": lambda: rnd.randrange(-(2**31), 2**31),
        "SFIXED32": lambda: rnd.randrange(-(2**31), 2**31),
        "INT64": lambda: rnd.randrange(-(2**63), 2**63),
        "SINT64": lambda: rnd.randrange(-(2**63), 2**63),
        "SFIXED64": lambda: rnd.randrange(-(2**63), 2**63),
        "UINT32": lambda: rnd.randrange(2**32),
        "FIXED32": lambda: rnd.randrange(2**32),
        "UINT64": lambda: rnd.randrange(2**64),
        "FIXED64": lambda: rnd.randrange(2**64),
        "FLOAT": lambda: rnd.choice([*specials, rnd.uniform(-1e6, 1e6)]),
        "DOUBLE": lambda: rnd.choice([*specials, rnd.uniform(-1e300, 1e300)]),
        "BOOL": lambda: rnd.random() < 0.5,
        "STRING": lambda: "".join(rnd.choice('aé€\n"\\') for _ in range(rnd.randrange(4))),
        "BYTES": lambda: bytes(rnd.randrange(256) for _ in range(rnd.randrange(4))),
    }[kind]()


def _fill(rnd: random.Random, message: ProtoMessage, depth: int) -> None:
    for field in message.DESCRIPTOR.fields:
        if rnd.random() < 0.5:
            continue
        kind = descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)[5:]
        name = field.name
        if name.startswith("m6"):
            entries = getattr(message, name)
            for _ in range(rnd.randrange(3)):
                if name == "m60":
                    entries[str(rnd.randrange(9))] = rnd.randrange(-(2**63), 2**63)
                elif name == "m61" and depth < 2:
                    _fill(rnd, entries[rnd.randrange(-5, 5)], depth + 1)
                elif name == "m62":
                    entries[rnd.random() < 0.5] = rnd.randrange(4)  # 3: not a Color
        elif name in ("child", "children"):
            if depth < 2:
                _fill(rnd, message.child if name == "child" else message.children.add(), depth + 1)
        elif name in ("color", "colors"):
            value = rnd.randrange(4)
            getattr(message, name).append(value) if name == "colors" else setattr(
                message, name, value
            )
        elif name == "at":
            message.at.FromSeconds(rnd.randrange(0, 2**33))
        elif name == "took":
            message.took.FromNanoseconds(rnd.randrange(-(10**12), 10**12))
        elif name == "wrapped":
            message.wrapped.value = rnd.randrange(-(2**63), 2**63)
        elif name == "blob":
            message.blob.update({"k": [1.5, None, "s", {"n": True}]})
        elif field.is_repeated:
            getattr(message, name).extend(
                _random_scalar(rnd, kind) for _ in range(rnd.randrange(3))
            )
        else:
            setattr(message, name, _random_scalar(rnd, kind))


def test_fast_protobuf_json_matches_message_to_dict() -> None:
    from google.protobuf import duration_pb2, struct_pb2, wrappers_pb2

    from pipelines.decode.protobuf_json import MessageConverter, message_to_dict

    pool = DescriptorPool()
    for module in (timestamp_pb2, wrappers_pb2, struct_pb2, duration_pb2):
        known = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(known)
        pool.Add(known)
    pool.Add(_rich_file())
    rich_class = GetMessageClass(pool.FindMessageTypeByName("t.Rich"))
    converter, rnd = MessageConverter(), random.Random(11)
    for _ in range(300):
        message = rich_class()
        _fill(rnd, message, 0)
        expected = message_to_dict(message)
        assert orjson.dumps(
            converter.to_dict(message), option=orjson.OPT_SORT_KEYS
        ) == orjson.dumps(expected, option=orjson.OPT_SORT_KEYS), message


def test_avro_chunks_become_container_files_that_read_back(tmp_path: Path) -> None:
    """The contract with the batch writer: framing schema + unchanged bodies = a valid file."""
    from pipelines.batch import BatchWriter

    users = [{"name": f"u{i}", "age": i} for i in range(50)]
    values = [framed(1, avro_body(USER, user)) for user in users]
    values[10] = framed(2, avro_body(CLICK, {"url": "/x"}))
    chunks, dead = make_decoder("avro", "apacheavro", registry=AVRO_SCHEMAS).decode(
        records(*values)
    )
    assert dead == []
    with BatchWriter(
        tmp_path, topic="events", partition=1, range_start=0, flush_size_bytes=1 << 20
    ) as writer:
        files = [batch for chunk in chunks for batch in writer.add(chunk)]
        files += writer.finish(len(values))
    read_back = []
    for batch in files:
        with open(batch.path, "rb") as file:
            read_back += list(fastavro.reader(file))
    assert read_back == [*users[:10], {"url": "/x"}, *users[11:]]
