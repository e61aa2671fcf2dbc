"""Schema texts by type: validation and the canonical form that decides schema identity.

Registering the same schema twice must give the same id, whatever whitespace the client
sent, so ids are keyed by the canonical text: compact JSON (key order kept, as Avro's own
``toString``) for Avro and JSON Schema, the stripped text for Protobuf.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from devstack.schema_registry.errors import invalid_schema

SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")


def canonical_schema(schema_type: str, schema: str, referenced: Sequence[str]) -> str:
    """Validate ``schema`` (with the texts of its references) and return its canonical text."""
    if schema_type not in SCHEMA_TYPES:
        raise invalid_schema(f"unknown schemaType {schema_type!r}; expected one of {SCHEMA_TYPES}")
    if schema_type == "PROTOBUF":
        return _check_protobuf(schema)
    parsed = _load_json(schema)
    if schema_type == "AVRO":
        parse_avro(parsed, referenced)
    elif not isinstance(parsed, dict | bool):
        raise invalid_schema("a JSON Schema must be an object or a boolean")
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def parse_avro(schema: Any, referenced: Sequence[str]) -> Any:
    """Parse an Avro schema whose named types may come from referenced schemas."""
    named: dict[str, Any] = {}
    try:
        for text in referenced:
            fastavro.parse_schema(_load_json(text), named_schemas=named)
        return fastavro.parse_schema(schema, named_schemas=named)
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as exc:
        raise invalid_schema(f"Avro: {exc}") from exc


def _load_json(schema: str) -> Any:
    try:
        return json.loads(schema)
    except json.JSONDecodeError as exc:
        raise invalid_schema(f"not JSON: {exc}") from exc


def _check_protobuf(schema: str) -> str:
    """.proto text (compiled later by the store) or a base64 FileDescriptorProto."""
    text = schema.strip()
    if not text:
        raise invalid_schema("empty Protobuf schema")
    return text


def is_serialized_protobuf(text: str) -> bool:
    try:
        raw = base64.b64decode(text, validate=True)
        descriptor_pb2.FileDescriptorProto().ParseFromString(raw)
    except (binascii.Error, ValueError, DecodeError):
        return False
    return True
