"""Converters: a partition's records → chunks of bytes in the format Kusto ingests.

Never parse what Kusto can parse: JSON and CSV go as the bytes they arrived in (checked a
whole run at once), Avro bodies go unchanged into container files, whole files go whole.
Only Protobuf, which Kusto cannot read, and Kafka Connect JSON envelopes, whose payload
must be cut out, are converted record by record.

=================  ====================================  ========================  ==========
kind               value                                 payload                   framing
=================  ====================================  ========================  ==========
``string``         JSON / CSV / TSV / ... / txt text     the value                 lines
``json``           schemaless JSON                       the value                 lines
``json`` (+        Connect envelope {schema, payload}    the payload, re-encoded   lines
schemas_enable)
``avro``           Confluent wire format, Avro           the body, unchanged       Avro OCF
``json_schema``    Confluent wire format, JSON           the body (JSON text)      lines
``protobuf``       Confluent wire format, Protobuf       the message as JSON       lines
``bytes``          a whole Parquet / ORC / Avro file     the value                 whole file
``bytes``          JSON / CSV / ... text (as string)     the value                 lines
=================  ====================================  ========================  ==========

Usage::

    decoder = make_decoder("avro", "apacheavro", registry=SchemaRegistryClient({...}))
    chunks, dead_letters = decoder.decode(messages)   # one partition, offset order
"""

from __future__ import annotations

from typing import Literal

from pipelines.decode.avro import AvroDecoder
from pipelines.decode.base import Decoder, SchemaRegistryUnavailable, Tombstone
from pipelines.decode.connect_json import ConnectEnvelopeDecoder
from pipelines.decode.csv_text import DELIMITERS, DelimitedTextDecoder
from pipelines.decode.json_text import JsonLinesDecoder
from pipelines.decode.protobuf import ProtobufDecoder
from pipelines.decode.raw import FILE_CHECKS, WholeFileDecoder
from pipelines.decode.registry import (
    MappingLookup,
    RegistryLike,
    RegistryLookup,
    SchemaLookup,
    SchemaReference,
    UnknownSchema,
    WriterSchema,
    as_lookup,
)
from pipelines.errors import ConfigError

__all__ = [
    "ConverterKind",
    "Decoder",
    "MappingLookup",
    "RegistryLookup",
    "SchemaLookup",
    "SchemaReference",
    "SchemaRegistryUnavailable",
    "Tombstone",
    "UnknownSchema",
    "WriterSchema",
    "make_decoder",
]

ConverterKind = Literal["string", "json", "avro", "json_schema", "protobuf", "bytes"]

_JSON_FORMATS = ("json", "multijson")
_FORMATS: dict[str, tuple[str, ...]] = {
    "string": (*_JSON_FORMATS, *DELIMITERS),
    "json": _JSON_FORMATS,
    "avro": ("avro", "apacheavro"),
    "json_schema": _JSON_FORMATS,
    "protobuf": _JSON_FORMATS,
    # Connect's ByteArrayConverter: whole files, or text lines passed on as they are
    "bytes": (*FILE_CHECKS, *_JSON_FORMATS, *DELIMITERS),
}
_NEEDS_REGISTRY = ("avro", "json_schema", "protobuf")


def make_decoder(
    kind: ConverterKind,
    format: str,
    *,
    registry: RegistryLike | None = None,
    expected_columns: int | None = None,
    validate: bool = False,
    schemas_enable: bool = False,
) -> Decoder:
    """The decoder for one mapping's converter and Kusto format.

    Args:
        kind: the value converter (Kafka Connect's ``value.converter``, by its short name).
        format: the Kusto ingestion format of the mapping (``json``, ``csv``, ``avro``, ...).
        registry: a ``SchemaRegistryClient``, any :class:`SchemaLookup`, or a mapping
            ``{schema_id: (schema_type, schema_text)}``; required for ``avro``,
            ``json_schema`` and ``protobuf``.
        expected_columns: for delimited text, the column count each record must have.
        validate: decode Avro bodies / validate JSON against its schema up front.
        schemas_enable: ``json`` records are Kafka Connect envelopes ``{schema, payload}``
            (``value.converter.schemas.enable``); the payload is what goes to Kusto.

    Raises:
        ConfigError: an unknown kind, a format the kind cannot produce, or no registry.
    """
    format = format.lower()
    if kind not in _FORMATS:
        raise ConfigError(
            f"unknown converter {kind!r}; expected one of {sorted(_FORMATS)}",
            setting="value.converter",
        )
    if format not in _FORMATS[kind]:
        raise ConfigError(
            f"converter {kind!r} cannot produce Kusto format {format!r}; "
            f"it produces {', '.join(_FORMATS[kind])}",
            setting="format",
        )
    if kind in _NEEDS_REGISTRY:
        if registry is None:
            raise ConfigError(
                f"converter {kind!r} needs a schema registry",
                setting="value.converter.schema.registry.url",
            )
        lookup = as_lookup(registry)
        if kind == "avro":
            return AvroDecoder(format, lookup, validate=validate)
        if kind == "json_schema":
            # jsonschema takes 0.15 s to import: only sinks that read JSON Schema pay it.
            from pipelines.decode.json_schema import JsonSchemaDecoder

            return JsonSchemaDecoder(format, lookup, validate=validate)
        return ProtobufDecoder(format, lookup)
    if kind == "bytes" and format in FILE_CHECKS:
        return WholeFileDecoder(format)
    if kind == "json" and schemas_enable:
        return ConnectEnvelopeDecoder(format)
    if format in _JSON_FORMATS:
        return JsonLinesDecoder(format)
    return DelimitedTextDecoder(format, expected_columns)
