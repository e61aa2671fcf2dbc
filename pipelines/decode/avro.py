"""Avro in the Confluent wire format, sent to Kusto without decoding a single record.

Records that share a schema id keep their Avro binary bodies unchanged; the batch writer
puts them into an Avro object container file whose header carries the registered writer
schema (:class:`~pipelines.records.AvroFraming`). Only the 5-byte header of each record is
read: a bad magic byte, a truncated header or an unknown schema id dead-letters the record.

A body that does not match its schema cannot be seen without decoding it. By default it is
not decoded: Kusto then fails the whole blob, and the ingest step bisects the batch to find
the record. ``validate=True`` decodes every body up front instead (slower, per record).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.types import Schema

from pipelines.decode.base import ChunkAssembler, offsets_of, values_of
from pipelines.decode.registry import (
    WIRE_HEADER,
    BadWireFormat,
    SchemaCache,
    SchemaLookup,
    UnknownSchema,
    WriterSchema,
    shared_schema_id,
    split_wire_format,
)
from pipelines.records import AvroFraming, Chunk, DeadLetter, KafkaRecord

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True)
class _AvroWriter:
    framing: AvroFraming
    parsed: Schema


class AvroDecoder:
    """Confluent-framed Avro values → Avro bodies grouped by writer schema."""

    def __init__(self, format: str, registry: SchemaLookup, *, validate: bool = False) -> None:
        self._format, self._registry, self._validate = format, registry, validate
        self._schemas = SchemaCache(registry, "AVRO", self._prepare)

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        offsets = offsets_of(records)
        rows, values = out.without_tombstones(records, values_of(records))
        shared_id = shared_schema_id(values)
        shared = self._schemas.get(shared_id) if shared_id is not None else None
        if isinstance(shared, _AvroWriter) and not self._validate:
            # the common case, one writer schema for the whole run: no loop in Python
            bodies = [value[WIRE_HEADER.size :] for value in values]
            out.add_checked(shared.framing, records, offsets, rows, bodies, {})
            return out.result()
        last_id, writer = -1, None
        for i, value in zip(rows, values, strict=True):
            try:
                schema_id, start = split_wire_format(value)
            except BadWireFormat as bad:
                out.reject(records[i], str(bad))
                continue
            if schema_id != last_id:
                last_id, writer = schema_id, self._schemas.get(schema_id)
            if isinstance(writer, str):
                out.reject(records[i], writer)
                continue
            assert writer is not None
            body = value[start:]
            if self._validate:
                problem = _body_problem(body, writer.parsed)
                if problem is not None:
                    out.reject(
                        records[i], f"Avro body does not match schema id {schema_id}: {problem}"
                    )
                    continue
            out.add(writer.framing, offsets[i], body)
        return out.result()

    def _prepare(self, writer: WriterSchema) -> _AvroWriter:
        standalone = standalone_schema(writer, self._registry)
        try:
            parsed = fastavro.parse_schema(standalone)
        except Exception as error:  # fastavro raises several kinds for a bad schema
            raise ValueError(f"invalid Avro schema: {error}") from error
        text = json.dumps(standalone, separators=(",", ":"), ensure_ascii=False)
        return _AvroWriter(AvroFraming(schema_json=text), parsed)


def _body_problem(body: bytes, parsed: Schema) -> str | None:
    stream = io.BytesIO(body)
    try:
        fastavro.schemaless_reader(stream, parsed, None)
    except Exception as error:  # a corrupt body fails in many ways (EOF, index, unicode)
        return f"{type(error).__name__}: {error}"
    if stream.tell() != len(body):
        return f"{len(body) - stream.tell()} bytes left after the record"
    return None


def standalone_schema(writer: WriterSchema, registry: SchemaLookup) -> Any:
    """The writer schema with named types from its references defined inline.

    An object container file's header must carry the whole schema; a registered schema may
    only name types that other subjects (its references) define.
    """
    try:
        schema = json.loads(writer.schema)
    except json.JSONDecodeError as error:
        raise ValueError(f"the schema is not JSON: {error}") from error
    if not writer.references:
        return schema
    named: dict[str, Any] = {}
    _collect_referenced_types(writer, registry, named, set())
    return _inline(schema, named, set(), "")


def _collect_referenced_types(
    writer: WriterSchema, registry: SchemaLookup, named: dict[str, Any], seen: set[str]
) -> None:
    for ref in writer.references:
        key = f"{ref.subject}/{ref.version}"
        if key in seen:
            continue
        seen.add(key)
        try:
            referenced = registry.schema_by_version(ref.subject, ref.version)
        except UnknownSchema as unknown:
            raise ValueError(f"reference {ref.name!r}: {unknown}") from unknown
        _collect_referenced_types(referenced, registry, named, seen)
        _collect_named(json.loads(referenced.schema), named, "")


def _full_name(node: dict[str, Any], namespace: str) -> tuple[str, str]:
    """(full name, namespace for children) of a named type."""
    name = node["name"]
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    space = node.get("namespace", namespace)
    return (f"{space}.{name}" if space else name), space


def _collect_named(node: Any, named: dict[str, Any], namespace: str) -> None:
    if isinstance(node, list):
        for branch in node:
            _collect_named(branch, named, namespace)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "error", "enum", "fixed"):
            full, namespace = _full_name(node, namespace)
            named[full] = {**node, "name": full}
            node = named[full]
            node.pop("namespace", None)
        for field in node.get("fields", []):
            _collect_named(field["type"], named, namespace)
        for key in ("items", "values"):
            if key in node:
                _collect_named(node[key], named, namespace)


def _inline(node: Any, named: dict[str, Any], defined: set[str], namespace: str) -> Any:
    """Copy of ``node`` where the first use of each referenced named type is its definition."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        full = node if "." in node or not namespace else f"{namespace}.{node}"
        full = full if full in named else node
        if full in named and full not in defined:
            return _inline(named[full], named, defined, "")  # defines it, see below
        return full if full in named else node
    if isinstance(node, list):
        return [_inline(branch, named, defined, namespace) for branch in node]
    if not isinstance(node, dict):
        return node
    copy = dict(node)
    if copy.get("type") in ("record", "error", "enum", "fixed"):
        full, namespace = _full_name(copy, namespace)
        if full in defined and full in named:  # already written out at an earlier use
            return full
        defined.add(full)
    elif isinstance(copy.get("type"), list | dict | str) and copy.get("type") not in (
        "array",
        "map",
    ):
        copy["type"] = _inline(copy["type"], named, defined, namespace)
    if "fields" in copy:
        copy["fields"] = [
            {**field, "type": _inline(field["type"], named, defined, namespace)}
            for field in copy["fields"]
        ]
    for key in ("items", "values"):
        if key in copy:
            copy[key] = _inline(copy[key], named, defined, namespace)
    return copy
