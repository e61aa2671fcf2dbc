"""Metadata columns and schema comparison without servers."""

from __future__ import annotations

import csv
import io
import uuid

import orjson
import pytest

from pipelines.decode import Decoder, WriterSchema, make_decoder
from pipelines.errors import ConfigError, IngestionFailed
from pipelines.evolve import Target, avro_kusto_type, compare, schema_fields, with_schema_checks
from pipelines.metadata import with_metadata
from pipelines.metadata_settings import MetadataColumns


class FakeRecord:
    def __init__(self, offset: int, value: bytes | None, key: bytes | None = b"k") -> None:
        self._offset, self._value, self._key = offset, value, key

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_764_288_000_123)

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]]:
        return [("trace", b"t-1"), ("empty", None)]


EVERY = MetadataColumns(key="k", headers="h", topic="t", partition="p", offset="o", timestamp="at")


def test_json_records_get_the_fields_spliced_in_without_parsing() -> None:
    decoder = with_metadata(make_decoder("json", "multijson"), EVERY, "multijson")
    values = [b'{"id":1}', b"  {  }", b'{"nested":{"a":[1]}}']
    (chunk,), dead = decoder.decode([FakeRecord(i, v) for i, v in enumerate(values)])
    assert dead == []
    parsed = [orjson.loads(p) for p in chunk.payloads]
    common = {"k": "k", "h": {"trace": "t-1", "empty": None}, "t": "orders", "p": 2}
    at = "2025-11-28T00:00:00.123000Z"
    assert parsed == [
        {**common, "o": 0, "at": at, "id": 1},
        {**common, "o": 1, "at": at},
        {**common, "o": 2, "at": at, "nested": {"a": [1]}},
    ]


def test_delimited_rows_get_the_values_appended_quoted_where_needed() -> None:
    columns = MetadataColumns(key="k", headers="h", offset="o")
    decoder = with_metadata(make_decoder("string", "csv"), columns, "csv")
    records = [FakeRecord(5, b'1,"x, y"', key=b'a "quoted", key'), FakeRecord(6, b"2,z", key=None)]
    (chunk,), _ = decoder.decode(records)
    rows = [next(csv.reader(io.StringIO(p.decode()))) for p in chunk.payloads]
    headers = '{"trace":"t-1","empty":null}'
    assert rows == [["1", "x, y", 'a "quoted", key', headers, "5"], ["2", "z", "", headers, "6"]]


def test_bad_records_and_tombstones_stay_dead_letters() -> None:
    decoder = with_metadata(make_decoder("json", "json"), MetadataColumns(offset="o"), "json")
    (chunk,), dead = decoder.decode(
        [FakeRecord(0, b"{oops"), FakeRecord(1, None), FakeRecord(2, b"{}")]
    )
    assert [d.record.offset() for d in dead] == [0, 1]
    assert chunk.payloads == [b'{"o":2}']


def test_formats_that_cannot_take_fields_without_re_encoding_are_refused() -> None:
    with pytest.raises(ConfigError, match="whole parquet files"):
        with_metadata(make_decoder("bytes", "parquet"), MetadataColumns(offset="o"), "parquet")
    with pytest.raises(ConfigError, match="not txt"):
        with_metadata(make_decoder("string", "txt"), MetadataColumns(offset="o"), "txt")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({}, "at least one"),
        ({"key": "c", "offset": "c"}, "chosen twice: c"),
        ({"key": "a$"}, "Kusto"),
    ],
)
def test_column_choices_are_checked(columns: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetadataColumns(**columns)


def testavro_kusto_types_become_kusto_types() -> None:
    assert avro_kusto_type(["null", "long"]) == "long"
    assert avro_kusto_type({"type": "long", "logicalType": "timestamp-millis"}) == "datetime"
    assert avro_kusto_type({"type": "bytes", "logicalType": "decimal"}) == "decimal"
    assert avro_kusto_type({"type": "record", "name": "R", "fields": []}) == "dynamic"
    assert avro_kusto_type({"type": "enum", "name": "E", "symbols": ["A"]}) == "string"
    assert avro_kusto_type(["null", "int", "string"]) == "dynamic"


def test_comparison_finds_missing_fields_and_types_that_no_longer_fit() -> None:
    columns = {"id": "long", "name": "string", "amount": "real", "at": "datetime"}
    fields = {"id": "int", "name": "long", "amount": "string", "added": "bool"}
    result = compare(fields, columns, [])
    assert result.missing == {"added": "bool"}
    assert result.misfits == ["field amount is string but column amount is real"]


def test_comparison_follows_the_ingestion_mapping() -> None:
    entries = [{"column": "Identifier", "Properties": {"Path": "$['id']"}}]
    result = compare({"id": "long", "x": "int"}, {"Identifier": "long"}, entries)
    assert result.missing == {"x": "int"} and result.misfits == []


def test_json_schema_properties_become_kusto_columns() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "amount": {"type": ["number", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array"},
            "ok": {"type": "boolean"},
        },
    }
    writer = WriterSchema("JSON", orjson.dumps(schema).decode(), ())
    assert schema_fields("json_schema", writer, registry=None) == {  # type: ignore[arg-type]
        "id": "long",
        "amount": "real",
        "at": "datetime",
        "tags": "dynamic",
        "ok": "bool",
    }


class MissingTable:
    def execute_mgmt(self, database: str, query: str) -> object:
        raise IngestionFailed(
            "table not found", permanent=True, error_code="BadRequest_EntityNotFound"
        )


def test_a_missing_table_stops_evolution_but_not_the_warning_check() -> None:
    schema = '{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}'
    registry = {7: ("AVRO", schema)}
    records = [FakeRecord(0, b"\x00\x00\x00\x00\x07\x02")]
    target = Target("http://127.0.0.1:1", "db", f"T{uuid.uuid4().hex}", "avro", None)

    def decoder(evolve: bool) -> Decoder:
        return with_schema_checks(
            make_decoder("avro", "avro", registry=registry),
            kind="avro",
            registry=registry,
            kusto=MissingTable(),
            target=target,
            evolve=evolve,
        )

    (chunk,), dead = decoder(evolve=False).decode(records)
    assert chunk.offsets == [0] and dead == []
    with pytest.raises(IngestionFailed, match="table not found"):
        decoder(evolve=True).decode(records)
