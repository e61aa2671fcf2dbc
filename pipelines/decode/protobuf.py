"""Protobuf in the Confluent wire format, converted to JSON lines (Kusto has no Protobuf format).

Wire format after the 5-byte header: the message indexes (a zigzag-varint count, then that
many zigzag varints naming the message type by its position in the file, nested types
included; a single ``0`` byte stands for ``[0]``, the first message), then the message.

Schemas are asked for in the registry's ``serialized`` form (a base64
``FileDescriptorProto``), which needs no ``.proto`` parser; imports are resolved through the
schema's references, and Google's well-known types come from the protobuf package itself.
This is the one converter that touches every record in Python: there is no other way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import orjson
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.json_format import SerializeToJsonError
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from pipelines.decode.base import ChunkAssembler, offsets_of, values_of
from pipelines.decode.json_text import LINES
from pipelines.decode.protobuf_json import MessageConverter
from pipelines.decode.registry import (
    BadWireFormat,
    SchemaCache,
    SchemaLookup,
    UnknownSchema,
    WriterSchema,
    split_wire_format,
)
from pipelines.records import Chunk, DeadLetter, KafkaRecord

WELL_KNOWN = {
    module.DESCRIPTOR.name: module.DESCRIPTOR
    for module in (
        any_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )
}


class _ProtoWriter:
    """A registered file's message types, by message-index path."""

    def __init__(self, top_level: list[Descriptor]) -> None:
        self._top_level = top_level  # in declaration order, as the indexes count them
        self._classes: dict[tuple[int, ...], type[Message]] = {}

    def message_class(self, indexes: tuple[int, ...]) -> type[Message]:
        cls = self._classes.get(indexes)
        if cls is None:
            cls = GetMessageClass(self._descriptor(indexes))
            self._classes[indexes] = cls
        return cls

    def _descriptor(self, indexes: tuple[int, ...]) -> Descriptor:
        types = self._top_level
        descriptor = None
        for depth, index in enumerate(indexes):
            if not 0 <= index < len(types):
                raise IndexError(
                    f"message index {index} at depth {depth} is out of range "
                    f"({len(types)} message types there)"
                )
            descriptor = types[index]
            types = list(descriptor.nested_types)
        if descriptor is None:
            raise IndexError("empty message index path")
        return descriptor


class ProtobufDecoder:
    """Confluent-framed Protobuf values → JSON lines (field names as in the .proto)."""

    def __init__(self, format: str, registry: SchemaLookup) -> None:
        self._format, self._registry = format, registry
        self._schemas = SchemaCache(registry, "PROTOBUF", self._prepare, serialized=True)
        self._to_json = MessageConverter()

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        offsets = offsets_of(records)
        for i, value in enumerate(values_of(records)):
            if value is None:
                out.tombstone(records[i])
                continue
            try:
                schema_id, start = split_wire_format(value)
                indexes, start = read_message_indexes(value, start)
            except BadWireFormat as bad:
                out.reject(records[i], str(bad))
                continue
            writer = self._schemas.get(schema_id)
            if isinstance(writer, str):
                out.reject(records[i], writer)
                continue
            try:
                message = writer.message_class(indexes)()
                message.ParseFromString(value[start:])
                # a well-formed message can still hold values JSON cannot carry: a Timestamp
                # beyond year 9999 (ValueError, or SerializeToJsonError when nested), an Any
                # of an unknown type (TypeError)
                as_dict = self._to_json.to_dict(message)
            except (IndexError, DecodeError, SerializeToJsonError, TypeError, ValueError) as error:
                out.reject(records[i], f"Protobuf message of schema id {schema_id}: {error}")
                continue
            out.add(LINES, offsets[i], orjson.dumps(as_dict))
        return out.result()

    def _prepare(self, writer: WriterSchema) -> _ProtoWriter:
        return load_proto_file(writer, self._registry)


def load_proto_file(writer: WriterSchema, registry: SchemaLookup) -> _ProtoWriter:
    """The message types of a registered (serialized) Protobuf schema, imports resolved.

    Raises:
        ValueError: the schema or one of its imports cannot be built into descriptors.
    """
    pool = DescriptorPool()
    file_proto = _file_proto(writer, "registered.proto")
    _add_dependencies(pool, file_proto, writer, registry, set())
    try:
        file = pool.Add(file_proto)
    except TypeError as error:  # the pool's complaint about unresolved or clashing types
        raise ValueError(f"cannot build descriptors: {error}") from error
    return _ProtoWriter([file.message_types_by_name[m.name] for m in file_proto.message_type])


def read_message_indexes(value: bytes, start: int) -> tuple[tuple[int, ...], int]:
    """The message-index path and where the message begins."""
    count, start = _read_zigzag(value, start)
    if count == 0:
        return (0,), start
    if count < 0 or count > 64:
        raise BadWireFormat(f"bad Protobuf message-index count {count}")
    indexes = []
    for _ in range(count):
        index, start = _read_zigzag(value, start)
        indexes.append(index)
    return tuple(indexes), start


def _read_zigzag(value: bytes, start: int) -> tuple[int, int]:
    result, shift = 0, 0
    for position in range(start, min(start + 10, len(value))):
        byte = value[position]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position + 1
        shift += 7
    raise BadWireFormat("truncated Protobuf message indexes")


def _file_proto(writer: WriterSchema, name: str) -> descriptor_pb2.FileDescriptorProto:
    try:
        raw = base64.b64decode(writer.schema, validate=True)
        file_proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
    except (binascii.Error, ValueError, DecodeError) as error:
        raise ValueError(
            "the registry returned .proto text, not a serialized FileDescriptorProto "
            "(the sink asks for format=serialized)"
        ) from error
    file_proto.name = name
    return file_proto


def _add_dependencies(
    pool: DescriptorPool,
    file_proto: descriptor_pb2.FileDescriptorProto,
    writer: WriterSchema,
    registry: SchemaLookup,
    added: set[str],
) -> None:
    """Add the files ``file_proto`` imports to ``pool``, dependencies first."""
    references = {ref.name: ref for ref in writer.references}
    for dependency in file_proto.dependency:
        if dependency in added:
            continue
        added.add(dependency)
        if dependency in WELL_KNOWN:
            well_known = descriptor_pb2.FileDescriptorProto()
            WELL_KNOWN[dependency].CopyToProto(well_known)
            pool.Add(well_known)
        elif dependency in references:
            ref = references[dependency]
            try:
                referenced = registry.schema_by_version(ref.subject, ref.version, serialized=True)
            except UnknownSchema as unknown:
                raise ValueError(f"import {dependency!r}: {unknown}") from unknown
            dependency_proto = _file_proto(referenced, dependency)
            _add_dependencies(pool, dependency_proto, referenced, registry, added)
            pool.Add(dependency_proto)
        else:
            raise ValueError(f"import {dependency!r} has no schema reference")
