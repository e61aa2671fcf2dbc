"""Formats, mappings and type conversion of the emulator's ingestion (no servers needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import uuid
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.orc
import pyarrow.parquet
import pytest

from devstack.kusto_emulator.formats import IngestionFailure
from devstack.kusto_emulator.ingestion import IngestionRequest, ingest_file
from devstack.kusto_emulator.store import KustoStore

ALL_TYPES = [
    ("s", "string"),
    ("l", "long"),
    ("i", "int"),
    ("r", "real"),
    ("d", "decimal"),
    ("b", "bool"),
    ("t", "datetime"),
    ("ts", "timespan"),
    ("dyn", "dynamic"),
    ("g", "guid"),
]
GUID = "5f1c2b8e-8d3a-4c1e-9f3b-2d9f0c1a7e11"


@pytest.fixture
def store(tmp_path: Path) -> KustoStore:
    store = KustoStore(tmp_path / "kusto")
    store.create_database("db")
    return store


def write(tmp_path: Path, data: bytes, compress: bool = False) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.blob"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def table_rows(store: KustoStore, table: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(f'"{name}"' for name, _ in store.columns("db", table))
    with store.connection() as con:
        return con.execute(f'SELECT {columns} FROM "db"."{table}" ORDER BY ALL').fetchall()


def test_json_converts_every_kusto_type(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", ALL_TYPES, merge=False)
    record = {
        "s": "text",
        "l": 9007199254740993,
        "i": 42,
        "r": 1.5,
        "d": "12.3456",
        "b": True,
        "t": "2024-05-01T10:20:30.1234567Z",
        "ts": "1.02:03:04.5",
        "dyn": {"a": [1, 2]},
        "g": GUID,
    }
    path = write(tmp_path, orjson.dumps(record), compress=True)

    ingest_file(store, IngestionRequest("db", "T", "json"), path)

    assert table_rows(store, "T") == [
        (
            "text",
            9007199254740993,
            42,
            1.5,
            decimal.Decimal("12.3456000000"),
            True,
            dt.datetime(2024, 5, 1, 10, 20, 30, 123456),
            dt.timedelta(days=1, hours=2, minutes=3, seconds=4.5),
            '{"a":[1,2]}',
            uuid.UUID(GUID),
        )
    ]


def test_values_that_do_not_convert_become_null(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("l", "long"), ("t", "datetime"), ("g", "guid")], merge=False)
    path = write(tmp_path, b'{"l": "many", "t": "yesterday", "g": "nope"}')

    ingest_file(store, IngestionRequest("db", "T", "json"), path)

    assert table_rows(store, "T") == [(None, None, None)]


def test_datetime_offsets_are_converted_to_utc(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("t", "datetime")], merge=False)
    path = write(tmp_path, b'{"t": "2024-05-01T12:00:00+02:00"}')

    ingest_file(store, IngestionRequest("db", "T", "json"), path)

    assert table_rows(store, "T") == [(dt.datetime(2024, 5, 1, 10, 0),)]


def test_json_mapping_with_nested_and_bracketed_paths(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("os", "string"), ("odd", "long"), ("k", "string")], merge=False)
    mapping = [
        {"column": "os", "Properties": {"Path": "$.device.os.name"}},
        {"column": "odd", "Properties": {"Path": "$['odd key']"}},
        {"column": "k", "Properties": {"ConstValue": "fixed"}},
    ]
    store.create_mapping("db", "T", "Json", "m", orjson.dumps(mapping).decode())
    path = write(tmp_path, b'{"device": {"os": {"name": "linux"}}, "odd key": 7}\n')

    ingest_file(store, IngestionRequest("db", "T", "json", mapping_reference="m"), path)

    assert table_rows(store, "T") == [("linux", 7, "fixed")]


def test_json_skips_malformed_lines(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    path = write(tmp_path, b'{"n": 1}\n{"n": \n{"n": 3}\n\n')

    outcome = ingest_file(store, IngestionRequest("db", "T", "json"), path)

    assert outcome.row_count == 2


def test_multijson_reads_arrays_and_multiline_objects(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    array = write(tmp_path, b'[{"n": 1},\n {"n": 2}]')
    pretty = write(tmp_path, b'{\n  "n": 3\n}\n{\n  "n": 4\n}\n')

    ingest_file(store, IngestionRequest("db", "T", "multijson"), array)
    ingest_file(store, IngestionRequest("db", "T", "multijson"), pretty)

    assert table_rows(store, "T") == [(1,), (2,), (3,), (4,)]


def test_malformed_multijson_fails_the_whole_blob(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    path = write(tmp_path, b'{"n": 1}\n{"n": ')

    with pytest.raises(IngestionFailure) as raised:
        ingest_file(store, IngestionRequest("db", "T", "multijson"), path)

    assert raised.value.error_code == "BadRequest_InvalidBlob"
    assert table_rows(store, "T") == []


@pytest.mark.parametrize(("format_name", "separator"), [("csv", ","), ("tsv", "\t"), ("psv", "|")])
def test_delimited_formats_by_position(
    store: KustoStore, tmp_path: Path, format_name: str, separator: str
) -> None:
    store.create_table(
        "db", "T", [("name", "string"), ("n", "long"), ("note", "string")], merge=False
    )
    lines = [["name", "n", "note"], ["ann", "1", ""], ["bob", "2", "x"]]
    data = "".join(separator.join(line) + "\n" for line in lines)
    path = write(tmp_path, data.encode(), compress=True)

    ingest_file(store, IngestionRequest("db", "T", format_name, ignore_first_record=True), path)

    assert table_rows(store, "T") == [("ann", 1, ""), ("bob", 2, "x")]


def test_csv_quoted_fields_and_ordinal_mapping(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("text", "string"), ("n", "long")], merge=False)
    mapping = (
        '[{"column":"text","Properties":{"Ordinal":"2"}},'
        '{"column":"n","Properties":{"Ordinal":"0"}}]'
    )
    path = write(tmp_path, b'5,skip,"a, ""quoted"" text"\n')

    ingest_file(store, IngestionRequest("db", "T", "csv", inline_mapping=mapping), path)

    assert table_rows(store, "T") == [('a, "quoted" text', 5)]


def test_txt_is_one_line_per_record(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("line", "string")], merge=False)
    path = write(tmp_path, b'first, with comma\nsecond "quoted"\n')

    ingest_file(store, IngestionRequest("db", "T", "txt"), path)

    assert table_rows(store, "T") == [("first, with comma",), ('second "quoted"',)]


def columnar_file(tmp_path: Path, format_name: str) -> Path:
    path = tmp_path / f"data.{format_name}"
    if format_name == "avro":
        schema = {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {
                    "name": "user",
                    "type": {
                        "type": "record",
                        "name": "U",
                        "fields": [{"name": "name", "type": "string"}],
                    },
                },
            ],
        }
        records = [
            {"id": 1, "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "user": {"name": "ann"}},
            {"id": 2, "at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "user": {"name": "bob"}},
        ]
        with path.open("wb") as stream:
            fastavro.writer(stream, schema, records)
        return path
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "at": pa.array([dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)], pa.timestamp("us")),
            "user": pa.array([{"name": "ann"}, {"name": "bob"}]),
        }
    )
    writer = pyarrow.parquet.write_table if format_name == "parquet" else pyarrow.orc.write_table
    writer(table, str(path))
    return path


@pytest.mark.parametrize("format_name", ["parquet", "orc", "avro"])
def test_columnar_formats_with_nested_path_mapping(
    store: KustoStore, tmp_path: Path, format_name: str
) -> None:
    columns = [("id", "long"), ("at", "datetime"), ("name", "string"), ("user", "dynamic")]
    store.create_table("db", "T", columns, merge=False)
    mapping = [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "at", "Properties": {"Field": "at"}},
        {"column": "name", "Properties": {"Path": "$.user.name"}},
        {"column": "user", "Properties": {"Path": "$.user"}},
    ]
    request = IngestionRequest(
        "db", "T", format_name, inline_mapping=orjson.dumps(mapping).decode()
    )

    ingest_file(store, request, columnar_file(tmp_path, format_name))

    assert table_rows(store, "T") == [
        (1, dt.datetime(2024, 1, 1), "ann", '{"name":"ann"}'),
        (2, dt.datetime(2024, 1, 2), "bob", '{"name":"bob"}'),
    ]


def test_empty_blob_and_no_records(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)

    with pytest.raises(IngestionFailure) as empty:
        ingest_file(store, IngestionRequest("db", "T", "csv"), write(tmp_path, b""))
    with pytest.raises(IngestionFailure) as no_records:
        ingest_file(store, IngestionRequest("db", "T", "json"), write(tmp_path, b"garbage\n"))

    assert empty.value.error_code == "BadRequest_EmptyBlob"
    assert no_records.value.error_code == "BadRequest_NoRecordsOrWrongFormat"


def test_mapping_problems_have_kusto_codes(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    path = write(tmp_path, b'{"n": 1}')

    with pytest.raises(IngestionFailure) as missing:
        ingest_file(store, IngestionRequest("db", "T", "json", mapping_reference="nope"), path)
    with pytest.raises(IngestionFailure) as unknown_column:
        bad = '[{"column":"other","Properties":{"Path":"$.n"}}]'
        ingest_file(store, IngestionRequest("db", "T", "json", inline_mapping=bad), path)

    assert missing.value.error_code == "BadRequest_InvalidMappingReference"
    assert unknown_column.value.error_code == "BadRequest_InconsistentMapping"


def test_extent_gets_tags_and_ingest_if_not_exists_skips(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    request = IngestionRequest(
        "db", "T", "csv", tags=["ingest-by:b1", "drop-by:b1"], ingest_if_not_exists=["b1"]
    )

    ingest_file(store, request, write(tmp_path, b"1\n2\n"))
    with pytest.raises(IngestionFailure) as skipped:
        ingest_file(store, request, write(tmp_path, b"1\n2\n"))

    assert skipped.value.error_code == "Skipped_IngestByTagAlreadyExists"
    [extent] = store.extents("db", "T")
    assert (extent.row_count, sorted(extent.tags)) == (2, ["drop-by:b1", "ingest-by:b1"])


def test_unix_time_transforms(store: KustoStore, tmp_path: Path) -> None:
    store.create_table(
        "db", "T", [("s", "datetime"), ("ms", "datetime"), ("ns", "datetime")], merge=False
    )
    mapping = [
        {"column": "s", "Properties": {"Path": "$.s", "Transform": "DateTimeFromUnixSeconds"}},
        {
            "column": "ms",
            "Properties": {"Path": "$.ms", "Transform": "DateTimeFromUnixMilliseconds"},
        },
        {
            "column": "ns",
            "Properties": {"Path": "$.ns", "Transform": "DateTimeFromUnixNanoseconds"},
        },
    ]
    path = write(tmp_path, b'{"s": 1714558830, "ms": 1714558830123, "ns": 1714558830123456000}')

    ingest_file(
        store,
        IngestionRequest("db", "T", "json", inline_mapping=orjson.dumps(mapping).decode()),
        path,
    )

    at = dt.datetime(2024, 5, 1, 10, 20, 30)
    assert table_rows(store, "T") == [
        (at, at.replace(microsecond=123000), at.replace(microsecond=123456))
    ]


def test_unsupported_transform_is_refused(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    mapping = '[{"column":"n","Properties":{"Path":"$.n","Transform":"GetPathElement(2)"}}]'

    with pytest.raises(IngestionFailure) as raised:
        ingest_file(
            store,
            IngestionRequest("db", "T", "json", inline_mapping=mapping),
            write(tmp_path, b"{}"),
        )

    assert raised.value.error_code == "BadRequest_InvalidMapping"


def test_avro_with_maps_and_unions_is_read_record_by_record(
    store: KustoStore, tmp_path: Path
) -> None:
    store.create_table(
        "db",
        "T",
        [("id", "long"), ("attrs", "dynamic"), ("either", "string"), ("raw", "string")],
        merge=False,
    )
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "attrs", "type": {"type": "map", "values": "long"}},
            {"name": "either", "type": ["null", "long", "string"]},
            {"name": "raw", "type": "bytes"},
        ],
    }
    path = tmp_path / "mixed.avro"
    with path.open("wb") as stream:
        fastavro.writer(
            stream,
            schema,
            [
                {"id": 1, "attrs": {"a": 1}, "either": 5, "raw": b"\x00\x01"},
                {"id": 2, "attrs": {}, "either": "five", "raw": b""},
            ],
        )

    ingest_file(store, IngestionRequest("db", "T", "avro"), path)

    assert table_rows(store, "T") == [(1, '{"a":1}', "5", "AAE="), (2, "{}", "five", "")]


def test_corrupt_avro_is_an_invalid_blob(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("id", "long")], merge=False)

    with pytest.raises(IngestionFailure) as raised:
        ingest_file(store, IngestionRequest("db", "T", "avro"), write(tmp_path, b"Obj\x01garbage"))

    assert raised.value.error_code == "BadRequest_InvalidBlob"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"1,x\n2,y,extra\n", "Stream_WrongNumberOfFields"),
        (b'1,"unterminated\n', "Stream_ClosingQuoteMissing"),
    ],
)
def test_malformed_csv_fails_with_kusto_codes(
    store: KustoStore, tmp_path: Path, data: bytes, code: str
) -> None:
    store.create_table("db", "T", [("n", "long"), ("s", "string")], merge=False)

    with pytest.raises(IngestionFailure) as raised:
        ingest_file(store, IngestionRequest("db", "T", "csv"), write(tmp_path, data))

    assert raised.value.error_code == code
    assert "Line: " in raised.value.details
    assert table_rows(store, "T") == []


def test_parquet_values_convert_to_the_column_types(store: KustoStore, tmp_path: Path) -> None:
    columns = [
        ("at", "datetime"),
        ("n", "long"),
        ("ok", "bool"),
        ("g", "guid"),
        ("tags", "dynamic"),
    ]
    store.create_table("db", "T", columns, merge=False)
    path = tmp_path / "typed.parquet"
    table = pa.table(
        {
            "at": ["2024-01-01T02:00:00+02:00"],
            "n": pa.array([7], pa.int32()),
            "ok": [1],
            "g": [GUID],
            "tags": [["a", "b"]],
        }
    )
    pyarrow.parquet.write_table(table, str(path))

    ingest_file(store, IngestionRequest("db", "T", "parquet"), path)

    assert table_rows(store, "T") == [
        (dt.datetime(2024, 1, 1), 7, True, uuid.UUID(GUID), '["a","b"]')
    ]
