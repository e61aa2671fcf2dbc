"""Kafka key, headers and metadata (topic, partition, offset, timestamp) as columns.

Opt-in per mapping (``metadata_columns``), under the column names the user chooses; the
user's ingestion mapping picks them up like any other field. It wraps the mapping's decoder,
so decoders stay unaware of it:

- JSON: the fields are spliced into each object right after its opening ``{``, at the
  bytes level, without parsing the record (``{"kafka_offset":7,"id":1}``).
- Delimited text (csv, tsv, psv, ...): the values are appended as extra fields, in the
  order ``key, headers, topic, partition, offset, timestamp`` of the columns that are set.
- Avro (registry converter): each body is decoded and encoded again with the writer schema
  extended by the fields (key ``[null, string]``, headers ``[null, map<[null, string]>]``,
  topic ``string``, partition ``int``, offset ``long``, timestamp ``[null,
  timestamp-millis]``): the one path that costs a Python decode and encode per record.

Values: the key as UTF-8 text (bytes that are not UTF-8 are replaced), headers as a JSON
object ``{name: text}`` (a header repeated keeps its last value), the timestamp as ISO 8601
UTC (null when the record has none). Whole files (Parquet, ORC, Avro container files) and
``txt`` cannot take fields: such a route is refused, naming ``metadata_columns``.

Usage::

    decoder = with_metadata(make_decoder(...), columns, "multijson")
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import fastavro
import orjson

from pipelines.decode import Decoder
from pipelines.decode.base import decode_error
from pipelines.decode.csv_text import DELIMITERS
from pipelines.decode.raw import WholeFileDecoder
from pipelines.errors import ConfigError
from pipelines.metadata_settings import MetadataColumns
from pipelines.records import AvroFraming, Chunk, DeadLetter, KafkaRecord

JSON_FORMATS = ("json", "multijson")
AVRO_FORMATS = ("avro", "apacheavro")
# confluent_kafka's TIMESTAMP_NOT_AVAILABLE
_NO_TIMESTAMP = 0


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def metadata_of(records: Sequence[KafkaRecord], parts: Sequence[str]) -> list[list[Any]]:
    """One list per part, holding that part of each record (column-wise: one list
    comprehension per part is several times faster than a function call per record).
    Timestamps are epoch milliseconds, None when the record has none."""
    columns: list[list[Any]] = []
    for part in parts:
        if part == "key":
            columns.append([_text(record.key()) for record in records])
        elif part == "headers":
            columns.append(
                [{name: _text(v) for name, v in record.headers() or []} for record in records]
            )
        elif part == "topic":
            columns.append([record.topic() for record in records])
        elif part == "partition":
            columns.append([record.partition() for record in records])
        elif part == "offset":
            columns.append([record.offset() for record in records])
        else:
            stamps = [record.timestamp() for record in records]
            columns.append([ms if kind != _NO_TIMESTAMP else None for kind, ms in stamps])
    return columns


def _utc(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


class _Adder(Protocol):
    def __call__(
        self, chunk: Chunk, columns: list[list[Any]], records: list[KafkaRecord]
    ) -> list[DeadLetter]:
        """Add ``columns[j][i]`` to the row at ``chunk.offsets[i]``; rows that cannot take
        them are dropped from the chunk and returned as dead letters."""
        ...


class _JsonSplice:
    def __init__(self, columns: dict[str, str]) -> None:
        self._names = list(columns.values())
        self._timestamp = list(columns).index("timestamp") if "timestamp" in columns else None

    def __call__(
        self, chunk: Chunk, columns: list[list[Any]], records: list[KafkaRecord]
    ) -> list[DeadLetter]:
        if self._timestamp is not None:
            columns[self._timestamp] = [_utc(ms) for ms in columns[self._timestamp]]
        names, utc_z = self._names, orjson.OPT_UTC_Z
        fields = [
            orjson.dumps(dict(zip(names, row, strict=True)), option=utc_z)[1:-1]
            for row in zip(*columns, strict=True)
        ]
        chunk.payloads = [_splice(p, f) for p, f in zip(chunk.payloads, fields, strict=True)]
        return []


def _splice(payload: bytes, fields: bytes) -> bytes:
    start = payload.index(b"{") + 1
    separator = b"" if payload[start:].lstrip().startswith(b"}") else b","
    return payload[:start] + fields + separator + payload[start:]


class _DelimitedAppend:
    def __init__(self, columns: dict[str, str], delimiter: str) -> None:
        self._delimiter = delimiter
        self._timestamp = list(columns).index("timestamp") if "timestamp" in columns else None
        self._headers = list(columns).index("headers") if "headers" in columns else None

    def __call__(
        self, chunk: Chunk, columns: list[list[Any]], records: list[KafkaRecord]
    ) -> list[DeadLetter]:
        if self._timestamp is not None:
            stamps = [_utc(ms) for ms in columns[self._timestamp]]
            columns[self._timestamp] = [at.isoformat() if at else None for at in stamps]
        if self._headers is not None:
            columns[self._headers] = [orjson.dumps(h).decode() for h in columns[self._headers]]
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self._delimiter, lineterminator="")
        join = self._delimiter.encode()
        payloads = []
        for payload, row in zip(chunk.payloads, zip(*columns, strict=True), strict=True):
            out.seek(0)
            out.truncate()
            writer.writerow(row)  # None becomes an empty field
            payloads.append(payload + join + out.getvalue().encode("utf-8"))
        chunk.payloads = payloads
        return []


_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AVRO_TYPES: dict[str, Any] = {
    "key": ["null", "string"],
    "headers": ["null", {"type": "map", "values": ["null", "string"]}],
    "topic": "string",
    "partition": "int",
    "offset": "long",
    "timestamp": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
}


class _AvroExtend:
    """Avro bodies decoded, given the fields, and encoded again with an extended schema:
    the one path that touches each record in Python, the price of Avro metadata columns."""

    def __init__(self, columns: dict[str, str]) -> None:
        bad = [name for name in columns.values() if not _AVRO_NAME.fullmatch(name)]
        if bad:
            raise ConfigError(
                f"{', '.join(bad)}: Avro field names are letters, digits and '_', "
                "not starting with a digit",
                setting="metadata_columns",
            )
        self._columns = columns
        self._schemas: dict[AvroFraming, tuple[AvroFraming, Any, Any]] = {}

    def __call__(
        self, chunk: Chunk, columns: list[list[Any]], records: list[KafkaRecord]
    ) -> list[DeadLetter]:
        assert isinstance(chunk.framing, AvroFraming)
        framing, reader, writer = self._extended(chunk.framing)
        names = list(self._columns.values())
        offsets, payloads, dead = [], [], []
        for offset, body, row, record in zip(
            chunk.offsets, chunk.payloads, zip(*columns, strict=True), records, strict=True
        ):
            try:
                decoded = fastavro.schemaless_reader(io.BytesIO(body), reader, None)
            except Exception as error:  # a corrupt body fails in many ways (EOF, index, ...)
                reason = f"Avro body does not match its schema: {type(error).__name__}: {error}"
                dead.append(DeadLetter(record, decode_error(record, reason)))
                continue
            assert isinstance(decoded, dict)
            decoded.update(zip(names, row, strict=True))
            out = io.BytesIO()
            fastavro.schemaless_writer(out, writer, decoded)
            offsets.append(offset)
            payloads.append(out.getvalue())
        chunk.framing, chunk.offsets, chunk.payloads = framing, offsets, payloads
        return dead

    def _extended(self, framing: AvroFraming) -> tuple[AvroFraming, Any, Any]:
        if framing not in self._schemas:
            schema = json.loads(framing.schema_json)
            if not isinstance(schema, dict) or schema.get("type") != "record":
                raise ConfigError(
                    "metadata columns need Avro records, not a schema of type "
                    f"{schema.get('type') if isinstance(schema, dict) else schema!r}",
                    setting="metadata_columns",
                )
            taken = {field["name"] for field in schema["fields"]} & set(self._columns.values())
            if taken:
                raise ConfigError(
                    f"{', '.join(sorted(taken))}: the records' schema has such fields already",
                    setting="metadata_columns",
                )
            extended = {
                **schema,
                "fields": [
                    *schema["fields"],
                    *({"name": n, "type": _AVRO_TYPES[p]} for p, n in self._columns.items()),
                ],
            }
            text = json.dumps(extended, separators=(",", ":"), ensure_ascii=False)
            self._schemas[framing] = (
                AvroFraming(schema_json=text),
                fastavro.parse_schema(schema),
                fastavro.parse_schema(extended),
            )
        return self._schemas[framing]


class MetadataDecoder:
    """A decoder whose rows also carry the chosen parts of their Kafka records."""

    def __init__(self, inner: Decoder, columns: MetadataColumns, format: str) -> None:
        self._inner = inner
        self._parts = list(columns.columns())
        self._add: _Adder
        if isinstance(inner, WholeFileDecoder):
            raise ConfigError(
                f"metadata columns cannot be added to whole {format} files carried as bytes",
                setting="metadata_columns",
            )
        if format in JSON_FORMATS:
            self._add = _JsonSplice(columns.columns())
        elif format in AVRO_FORMATS:
            self._add = _AvroExtend(columns.columns())
        elif delimiter := DELIMITERS.get(format):
            self._add = _DelimitedAppend(columns.columns(), delimiter)
        else:
            raise ConfigError(
                f"metadata columns need JSON, delimited text or Avro, not {format}: "
                "Parquet, ORC and txt rows cannot take extra fields",
                setting="metadata_columns",
            )

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        chunks, dead_letters = self._inner.decode(records)
        if not chunks:
            return chunks, dead_letters
        by_offset = {record.offset(): record for record in records}
        for chunk in chunks:
            of_chunk = [by_offset[offset] for offset in chunk.offsets]
            dead_letters += self._add(chunk, metadata_of(of_chunk, self._parts), of_chunk)
        dead_letters.sort(key=lambda letter: letter.record.offset() or 0)
        return [chunk for chunk in chunks if chunk.offsets], dead_letters


def with_metadata(decoder: Decoder, columns: MetadataColumns | None, format: str) -> Decoder:
    """``decoder`` itself when no columns are chosen, else one that adds them."""
    return decoder if columns is None else MetadataDecoder(decoder, columns, format)
