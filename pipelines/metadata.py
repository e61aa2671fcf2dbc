"""Kafka key, headers and metadata (topic, partition, offset, timestamp) as columns.

Opt-in per mapping (``metadata_columns``), under the column names the user chooses; the
user's ingestion mapping picks them up like any other field. It wraps the mapping's decoder,
so decoders stay unaware of it:

- JSON: the fields are spliced into each object right after its opening ``{``, at the
  bytes level, without parsing the record (``{"kafka_offset":7,"id":1}``).
- Delimited text (csv, tsv, psv, ...): the values are appended as extra fields, in the
  order ``key, headers, topic, partition, offset, timestamp`` of the columns that are set.

Values: the key as UTF-8 text (bytes that are not UTF-8 are replaced), headers as a JSON
object ``{name: text}`` (a header repeated keeps its last value), the timestamp as ISO 8601
UTC (null when the record has none). Avro, Parquet and ORC are not supported: their
bodies would need re-encoding, and the route is refused at start-up with that reason.

Usage::

    decoder = with_metadata(make_decoder(...), columns, "multijson")
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.decode import Decoder
from pipelines.decode.csv_text import DELIMITERS
from pipelines.errors import ConfigError
from pipelines.records import Chunk, DeadLetter, KafkaRecord, LineFraming

JSON_FORMATS = ("json", "multijson")
_PARTS = ("key", "headers", "topic", "partition", "offset", "timestamp")
# confluent_kafka's TIMESTAMP_NOT_AVAILABLE
_NO_TIMESTAMP = 0
_KUSTO_COLUMN = re.compile(r"[A-Za-z0-9_.\- ]{1,1024}")


class MetadataColumns(BaseModel):
    """Column names for the parts of a Kafka record to add to each row (unset: left out).

    A settings model like those of :mod:`pipelines.config` (frozen, unknown fields refused),
    defined here because the settings import it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = Field(None, description="Column for the record key (text)")
    headers: str | None = Field(None, description="Column for the headers, a JSON object")
    topic: str | None = Field(None, description="Column for the topic name")
    partition: str | None = Field(None, description="Column for the partition number")
    offset: str | None = Field(None, description="Column for the record's offset")
    timestamp: str | None = Field(None, description="Column for the record timestamp (UTC)")

    @field_validator(*_PARTS)
    @classmethod
    def _kusto_column(cls, value: str | None) -> str | None:
        if value is not None and not _KUSTO_COLUMN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid Kusto column name "
                "(letters, digits, '_', '.', '-', ' '; at most 1024 characters)"
            )
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> MetadataColumns:
        names = list(self.columns().values())
        if not names:
            raise ValueError(f"choose a column name for at least one of {', '.join(_PARTS)}")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"column names chosen twice: {', '.join(twice)}")
        return self

    def columns(self) -> dict[str, str]:
        """``{part: column name}`` of the parts that are set, in the fixed order."""
        return {part: getattr(self, part) for part in _PARTS if getattr(self, part)}


def metadata_values(record: KafkaRecord, parts: Sequence[str]) -> list[Any]:
    """The values of ``parts`` of ``record``, JSON-ready."""
    values: list[Any] = []
    for part in parts:
        if part == "key":
            key = record.key()
            values.append(key.decode("utf-8", "replace") if isinstance(key, bytes) else key)
        elif part == "headers":
            values.append(
                {
                    name: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                    for name, value in record.headers() or []
                }
            )
        elif part == "topic":
            values.append(record.topic())
        elif part == "partition":
            values.append(record.partition())
        elif part == "offset":
            values.append(record.offset())
        else:
            kind, millis = record.timestamp()
            at = datetime.fromtimestamp(millis / 1000, UTC) if kind != _NO_TIMESTAMP else None
            values.append(at.isoformat().replace("+00:00", "Z") if at else None)
    return values


class _JsonSplice:
    def __init__(self, columns: dict[str, str]) -> None:
        self._names = list(columns.values())

    def __call__(self, payload: bytes, values: list[Any]) -> bytes:
        fields = orjson.dumps(dict(zip(self._names, values, strict=True)))[1:-1]
        start = payload.index(b"{") + 1
        rest = payload[start:].lstrip()
        separator = b"" if rest.startswith(b"}") else b","
        return payload[:start] + fields + separator + payload[start:]


class _DelimitedAppend:
    def __init__(self, delimiter: str) -> None:
        self._delimiter = delimiter

    def __call__(self, payload: bytes, values: list[Any]) -> bytes:
        out = io.StringIO()
        texts = [
            "" if v is None else orjson.dumps(v).decode() if isinstance(v, dict) else str(v)
            for v in values
        ]
        csv.writer(out, delimiter=self._delimiter, lineterminator="").writerow(texts)
        return payload + self._delimiter.encode() + out.getvalue().encode("utf-8")


class MetadataDecoder:
    """A decoder whose rows also carry the chosen parts of their Kafka records."""

    def __init__(self, inner: Decoder, columns: MetadataColumns, format: str) -> None:
        self._inner = inner
        self._parts = list(columns.columns())
        if format in JSON_FORMATS:
            self._add = _JsonSplice(columns.columns())
        else:
            delimiter = DELIMITERS.get(format)
            if delimiter is None:
                raise ConfigError(
                    f"metadata columns need JSON or delimited text, not {format}: Avro, "
                    "Parquet, ORC and txt rows cannot take extra fields without re-encoding",
                    setting="metadata_columns",
                )
            self._add = _DelimitedAppend(delimiter)

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        chunks, dead_letters = self._inner.decode(records)
        if not chunks:
            return chunks, dead_letters
        by_offset = {record.offset(): record for record in records}
        for chunk in chunks:
            if not isinstance(chunk.framing, LineFraming):
                continue  # decoders give JSON and delimited text line framing only
            chunk.payloads = [
                self._add(payload, metadata_values(by_offset[offset], self._parts))
                for offset, payload in zip(chunk.offsets, chunk.payloads, strict=True)
            ]
        return chunks, dead_letters


def with_metadata(decoder: Decoder, columns: MetadataColumns | None, format: str) -> Decoder:
    """``decoder`` itself when no columns are chosen, else one that adds them."""
    return decoder if columns is None else MetadataDecoder(decoder, columns, format)
