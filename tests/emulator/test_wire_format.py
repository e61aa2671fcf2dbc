"""Result tables as the SDK parses them: every Kusto type survives the round trip."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import orjson
from azure.kusto.data.response import KustoResponseDataSetV1, KustoResponseDataSetV2

from devstack.kusto_emulator.responses import ResultTable, v1_body, v2_body

COLUMNS = [
    ("s", "string"),
    ("l", "long"),
    ("r", "real"),
    ("d", "decimal"),
    ("b", "bool"),
    ("t", "datetime"),
    ("span", "timespan"),
    ("neg", "timespan"),
    ("dyn", "dynamic"),
    ("g", "guid"),
]
GUID = uuid.UUID("5f1c2b8e-8d3a-4c1e-9f3b-2d9f0c1a7e11")
ROW = [
    "text",
    2**53 + 1,
    0.25,
    decimal.Decimal("12.3400000000"),
    True,
    dt.datetime(2024, 5, 1, 10, 20, 30, 123456),
    dt.timedelta(days=2, hours=3, seconds=4, microseconds=500000),
    dt.timedelta(minutes=-90),
    '{"a":[1,2]}',
    GUID,
]


def as_wire(body: object) -> object:
    """What the SDK receives: the body through JSON."""
    return orjson.loads(orjson.dumps(body))


def test_v2_round_trip_of_every_type() -> None:
    table = ResultTable(COLUMNS, [ROW, [None] * len(COLUMNS)])

    result = KustoResponseDataSetV2(as_wire(v2_body(table))).primary_results[0]

    first, empty = result.rows
    assert first.to_list() == [
        "text",
        2**53 + 1,
        0.25,
        decimal.Decimal("12.34"),
        True,
        dt.datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=dt.UTC),
        dt.timedelta(days=2, hours=3, seconds=4, microseconds=500000),
        dt.timedelta(minutes=-90),
        {"a": [1, 2]},
        str(GUID),
    ]
    assert empty.to_list() == [None] * len(COLUMNS)


def test_v1_table_carries_kusto_and_dotnet_type_names() -> None:
    body = as_wire(v1_body(ResultTable([("n", "long")], [[1]])))

    result = KustoResponseDataSetV1(body).primary_results[0]

    assert body["Tables"][0]["Columns"] == [
        {"ColumnName": "n", "DataType": "Int64", "ColumnType": "long"}
    ]
    assert [row["n"] for row in result] == [1]
