"""Schema evolution: a writer schema in the registry gains fields, the Kusto table follows.

Wraps the decoder of a mapping whose converter uses a schema registry (Avro, JSON Schema,
Protobuf). The first time a run meets a schema id, its fields (name and Kusto type) are
compared with the table's columns (``.show table T schema as json``) and, when the mapping
names an ingestion mapping, with the fields that mapping reads:

- opted in (``evolve_schema: true``): missing fields become columns (``.create-merge
  table``) and entries of the ingestion mapping (``.create-or-alter table T ingestion
  <kind> mapping``), before the decoder hands over the first batch that carries them. A
  field whose type no longer fits its column makes every record of that schema id a dead
  letter naming field, types and table: with ``behavior.on.error=fail`` that stops the
  partition with the message, otherwise the records go to the dead-letter topic.
- not opted in: a warning, once per schema id, names the fields no column receives.

Results are cached per (cluster, database, table, mapping, schema id) for the process.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pipelines.decode import Decoder, SchemaLookup, UnknownSchema, WriterSchema
from pipelines.decode.avro import standalone_schema
from pipelines.decode.base import decode_error
from pipelines.decode.protobuf import load_proto_file, read_message_indexes
from pipelines.decode.registry import (
    BadWireFormat,
    RegistryLike,
    as_lookup,
    shared_schema_id,
    split_wire_format,
)
from pipelines.errors import ConfigError, SinkError
from pipelines.ingest import kusto_errors
from pipelines.records import Chunk, DeadLetter, KafkaRecord

log = logging.getLogger(__name__)

SCHEMA_TYPES = {"avro": "AVRO", "json_schema": "JSON", "protobuf": "PROTOBUF"}

# column type -> field types a column of that type still takes
_FITS = {
    "long": {"int"},
    "real": {"int", "long", "decimal"},
    "decimal": {"int", "long", "real"},
    "datetime": {"int", "long"},  # epoch numbers
}


class MgmtClient(Protocol):
    """What is needed of ``azure.kusto.data.KustoClient``."""

    def execute_mgmt(self, database: str, query: str) -> Any: ...


@dataclass(frozen=True)
class Target:
    """The table (and ingestion mapping) a mapping writes, on one cluster."""

    cluster: str
    database: str
    table: str
    format: str
    mapping: str | None

    @property
    def mapping_kind(self) -> str:
        return "avro" if self.format in ("avro", "apacheavro") else "json"

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


# --- Fields of a writer schema, as Kusto columns ---------------------------------------------


def avro_kusto_type(node: Any) -> str:
    """The Kusto column type for an Avro type (dynamic for records, maps, arrays, unions)."""
    if isinstance(node, list):
        branches = [branch for branch in node if branch != "null"]
        return avro_kusto_type(branches[0]) if len(branches) == 1 else "dynamic"
    if isinstance(node, dict):
        logical = node.get("logicalType", "")
        if logical.startswith(("timestamp-", "local-timestamp-")) or logical == "date":
            return "datetime"
        if logical == "decimal":
            return "decimal"
        kind = node.get("type")
        if kind in ("enum", "fixed"):
            return "string"
        return avro_kusto_type(kind) if isinstance(kind, str | list) else "dynamic"
    primitives = {
        "boolean": "bool",
        "int": "int",
        "long": "long",
        "float": "real",
        "double": "real",
        "string": "string",
        "bytes": "string",
    }
    return primitives.get(node, "dynamic")


def _json_schema_type(node: Any) -> str:
    if not isinstance(node, dict):
        return "dynamic"
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "string" and node.get("format") in ("date-time", "date"):
        return "datetime"
    return {"integer": "long", "number": "real", "boolean": "bool", "string": "string"}.get(
        str(kind), "dynamic"
    )


_PROTO_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "real",
    FieldDescriptor.TYPE_FLOAT: "real",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
    FieldDescriptor.TYPE_ENUM: "string",
    **dict.fromkeys(
        (
            FieldDescriptor.TYPE_INT32,
            FieldDescriptor.TYPE_SINT32,
            FieldDescriptor.TYPE_SFIXED32,
            FieldDescriptor.TYPE_UINT32,
            FieldDescriptor.TYPE_FIXED32,
        ),
        "int",
    ),
    **dict.fromkeys(
        (
            FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_SFIXED64,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_FIXED64,
        ),
        "long",
    ),
}
_PROTO_MESSAGES = {"google.protobuf.Timestamp": "datetime", "google.protobuf.Duration": "timespan"}


def _proto_type(field: FieldDescriptor) -> str:
    if field.is_repeated:  # maps are repeated entries too
        return "dynamic"
    if field.message_type is not None:
        return _PROTO_MESSAGES.get(field.message_type.full_name, "dynamic")
    return _PROTO_SCALARS.get(field.type, "dynamic")


def schema_fields(
    kind: str, writer: WriterSchema, registry: SchemaLookup, indexes: tuple[int, ...] = (0,)
) -> dict[str, str]:
    """``{field: Kusto type}`` of a writer schema's top-level record (message) fields.

    Raises:
        ValueError: the schema cannot be read.
    """
    if kind == "avro":
        schema = standalone_schema(writer, registry)
        return {f["name"]: avro_kusto_type(f["type"]) for f in schema.get("fields", [])}
    if kind == "json_schema":
        schema = json.loads(writer.schema)
        properties = schema.get("properties", {})
        return {name: _json_schema_type(node) for name, node in properties.items()}
    descriptor: Descriptor = load_proto_file(writer, registry).message_class(indexes).DESCRIPTOR
    return {field.name: _proto_type(field) for field in descriptor.fields}


# --- The table's side --------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def table_columns(kusto: MgmtClient, target: Target) -> dict[str, str]:
    command = f".show table {_quoted(target.table)} schema as json"
    row = kusto.execute_mgmt(target.database, command).primary_results[0][0]
    schema = json.loads(row["Schema"])
    return {c["Name"]: c["CslType"] for c in schema["OrderedColumns"]}


def mapping_entries(kusto: MgmtClient, target: Target) -> list[dict[str, Any]]:
    """The entries of the target's ingestion mapping ([] when it names none)."""
    if target.mapping is None:
        return []
    command = f".show table {_quoted(target.table)} ingestion {target.mapping_kind} mappings"
    for row in kusto.execute_mgmt(target.database, command).primary_results[0]:
        if row["Name"] == target.mapping:
            return list(json.loads(row["Mapping"]))
    raise ConfigError(
        f"{target} has no {target.mapping_kind} ingestion mapping {target.mapping}",
        setting="mapping",
    )


_JSON_PATH = re.compile(r"^\$(?:\.(?P<plain>[^.\[]+)|\[\s*'(?P<quoted>[^']+)'\s*\])$")


def _source_field(entry: dict[str, Any]) -> str | None:
    properties = entry.get("Properties") or {}
    if "Field" in properties:
        return str(properties["Field"])
    match = _JSON_PATH.match(str(properties.get("Path", "")))
    return (match["plain"] or match["quoted"]) if match else None


def _mapping_entry(kind: str, field: str) -> dict[str, Any]:
    if kind == "avro":
        return {"column": field, "Properties": {"Field": field}}
    path = f"$.{field}" if field.isidentifier() else f"$[{json.dumps(field)[1:-1]!r}]"
    return {"column": field, "Properties": {"Path": path}}


def _fits(column_type: str, field_type: str) -> bool:
    return (
        column_type == field_type
        or column_type in ("dynamic", "string")
        or field_type in _FITS.get(column_type, ())
    )


@dataclass(frozen=True)
class Comparison:
    """A schema's fields against a table: what is missing, what no longer fits."""

    missing: dict[str, str]  # field -> Kusto type, no column receives it
    misfits: list[str]  # one sentence per field whose type the column cannot take


def compare(
    fields: dict[str, str], columns: dict[str, str], entries: list[dict[str, Any]]
) -> Comparison:
    mapped = {_source_field(e): str(e.get("column")) for e in entries}
    missing, misfits = {}, []
    for field, field_type in fields.items():
        column = mapped.get(field, field if not entries else None)
        if column is None or column not in columns:
            missing[field] = field_type
        elif not _fits(columns[column], field_type):
            misfits.append(
                f"field {field} is {field_type} but column {column} is {columns[column]}"
            )
    return Comparison(missing, misfits)


def extend_table(
    kusto: MgmtClient, target: Target, missing: dict[str, str], columns: dict[str, str]
) -> None:
    """Add the ``missing`` fields as columns (those the table lacks) and, when the target
    names an ingestion mapping, as its entries."""
    new = ", ".join(f"{_quoted(f)}:{kind}" for f, kind in missing.items() if f not in columns)
    if new:
        kusto.execute_mgmt(target.database, f".create-merge table {_quoted(target.table)} ({new})")
    if target.mapping is None:
        return
    entries = mapping_entries(kusto, target)
    entries += [_mapping_entry(target.mapping_kind, field) for field in missing]
    text = json.dumps(entries, separators=(",", ":")).replace("'", "\\'")
    kusto.execute_mgmt(
        target.database,
        f".create-or-alter table {_quoted(target.table)} ingestion {target.mapping_kind} "
        f"mapping '{target.mapping}' '{text}'",
    )


# --- The decoder wrapper -----------------------------------------------------------------------

# (target, evolve, schema id) -> why records of that schema cannot go to the table, or None
_settled: dict[tuple[Target, bool, int], str | None] = {}


class EvolvingDecoder:
    """Checks (and, opted in, extends) the table for each new writer schema, then decodes."""

    def __init__(
        self,
        inner: Decoder,
        *,
        kind: str,
        registry: SchemaLookup,
        kusto: MgmtClient,
        target: Target,
        evolve: bool,
    ) -> None:
        self._inner, self._kind, self._registry = inner, kind, registry
        self._kusto, self._target, self._evolve = kusto, target, evolve

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        refused: dict[int, str] = {}
        ids = _schema_ids(records)
        for schema_id in dict.fromkeys(ids):  # distinct, in order, at C speed
            if schema_id is None:
                continue  # no wire header: the decoder dead-letters the record
            problem = self._settle(schema_id, records[ids.index(schema_id)])
            if problem is not None:
                refused[schema_id] = problem
        if not refused:
            return self._inner.decode(records)
        kept = [r for r, schema_id in zip(records, ids, strict=True) if schema_id not in refused]
        chunks, dead_letters = self._inner.decode(kept)
        dead_letters += [
            DeadLetter(record, decode_error(record, refused[schema_id]))
            for record, schema_id in zip(records, ids, strict=True)
            if schema_id in refused
        ]
        dead_letters.sort(key=lambda letter: letter.record.offset() or 0)
        return chunks, dead_letters

    def _settle(self, schema_id: int, record: KafkaRecord) -> str | None:
        key = (self._target, self._evolve, schema_id)
        if key not in _settled:
            _settled[key] = self._compare_and_extend(schema_id, record)
        return _settled[key]

    def _compare_and_extend(self, schema_id: int, record: KafkaRecord) -> str | None:
        target = self._target
        try:
            serialized = self._kind == "protobuf"
            writer = self._registry.schema_by_id(schema_id, serialized=serialized)
            if writer.schema_type != SCHEMA_TYPES[self._kind]:
                return None  # the decoder dead-letters records of a schema of another type
            indexes = _message_indexes(record) if self._kind == "protobuf" else (0,)
            fields = schema_fields(self._kind, writer, self._registry, indexes)
        except (UnknownSchema, ValueError, IndexError, KeyError) as error:
            # the decoder names the same problem on each record of this schema
            log.debug("schema id %s not compared with %s: %s", schema_id, target, error)
            return None
        try:
            with kusto_errors(f"reading the schema of {target}"):
                columns = table_columns(self._kusto, target)
                entries = mapping_entries(self._kusto, target)
        except SinkError as error:
            if self._evolve or error.transient:
                raise
            # Only a warning was at stake: the ingestion itself reports a missing table or
            # mapping, with the batch it concerns.
            log.debug("schema id %s not compared with %s: %s", schema_id, target, error)
            return None
        comparison = compare(fields, columns, entries)
        if not self._evolve:
            if comparison.missing:
                log.warning(
                    "schema id %s of topic %s has fields that no column of %s receives, and "
                    "they are not ingested: %s; set evolve_schema on the mapping to add them",
                    schema_id,
                    record.topic(),
                    target,
                    ", ".join(comparison.missing),
                )
            return None
        if comparison.misfits:
            return f"schema id {schema_id} changed incompatibly for table {target}: " + "; ".join(
                comparison.misfits
            )
        if comparison.missing:
            with kusto_errors(f"extending {target} for schema id {schema_id}"):
                extend_table(self._kusto, target, comparison.missing, columns)
            log.info(
                "schema id %s: added %s to %s%s",
                schema_id,
                ", ".join(f"{f}:{t}" for f, t in comparison.missing.items()),
                target,
                f" and its mapping {target.mapping}" if target.mapping else "",
            )
        return None


def _schema_ids(records: Sequence[KafkaRecord]) -> list[int | None]:
    """The schema id of each record (None without a valid header); one look when a run
    shares one schema, as runs nearly always do."""
    values = [record.value() for record in records]
    if None not in values and str not in map(type, values):  # C-speed scans
        shared = shared_schema_id(cast(list[bytes], values))
        if shared is not None:
            return [shared] * len(values)
    return [_schema_id(value) for value in values]


def _schema_id(value: bytes | str | None) -> int | None:
    if not isinstance(value, bytes):
        return None
    try:
        return split_wire_format(value)[0]
    except BadWireFormat:
        return None


def _message_indexes(record: KafkaRecord) -> tuple[int, ...]:
    value = record.value()
    assert isinstance(value, bytes)
    try:
        return read_message_indexes(value, split_wire_format(value)[1])[0]
    except BadWireFormat:
        return (0,)


def with_schema_checks(
    decoder: Decoder,
    *,
    kind: str,
    registry: RegistryLike | None,
    kusto: MgmtClient,
    target: Target,
    evolve: bool,
) -> Decoder:
    """``decoder`` itself for converters without a registry, else one that checks each new
    writer schema against the table (and extends the table when ``evolve``)."""
    if kind not in SCHEMA_TYPES or registry is None:
        return decoder
    return EvolvingDecoder(
        decoder, kind=kind, registry=as_lookup(registry), kusto=kusto, target=target, evolve=evolve
    )
