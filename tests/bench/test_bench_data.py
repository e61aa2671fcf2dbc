"""The benchmark's generated records: valid in their format, the same event in each, ~200 B."""

from __future__ import annotations

import csv
import io
import struct

import fastavro
import orjson

from bench.data import AVRO_SCHEMA, COLUMNS, AvroEvents, CsvEvents, JsonEvents, values


def test_json_events_are_objects_with_increasing_ids_and_nested_fields():
    records = list(values(JsonEvents(), 0, 1000))
    parsed = [orjson.loads(r) for r in records]
    assert [p["id"] for p in parsed] == list(range(1000))
    assert {"country", "city"} <= parsed[7]["geo"].keys()
    assert isinstance(parsed[7]["device"]["version"], int)
    assert 150 <= sum(map(len, records)) / len(records) <= 260
    assert len({r.split(b'"user"')[1] for r in records}) > 500  # bodies vary


def test_csv_rows_have_one_field_per_column():
    rows = [next(csv.reader(io.StringIO(r.decode()))) for r in values(CsvEvents(), 5, 200)]
    assert {len(row) for row in rows} == {len(COLUMNS)}
    assert [int(row[0]) for row in rows] == list(range(5, 205))
    assert orjson.loads(rows[0][6])["os"]  # the dynamic column is JSON


def test_avro_values_are_confluent_wire_format_of_the_schema():
    schema = fastavro.parse_schema(AVRO_SCHEMA)
    for i, value in zip(range(300, 310), values(AvroEvents(schema_id=42), 300, 10), strict=True):
        assert value[0] == 0 and struct.unpack(">I", value[1:5]) == (42,)
        event = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)
        assert event["id"] == i and len(event["at"]) == 24
