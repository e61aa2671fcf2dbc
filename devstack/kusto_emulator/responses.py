"""Result tables and their v1 (management, v1 query) and v2 (query) wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.kusto_emulator.kusto_types import wire_encoder

# v1 answers carry the .NET type name next to the Kusto one.
_V1_DATA_TYPES = {
    "string": "String",
    "long": "Int64",
    "int": "Int32",
    "real": "Double",
    "decimal": "Decimal",
    "bool": "Boolean",
    "datetime": "DateTime",
    "timespan": "TimeSpan",
    "dynamic": "Object",
    "guid": "Guid",
}


@dataclass
class ResultTable:
    """Columns as (name, Kusto type) and rows of raw (DuckDB / Python) values."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]] | list[tuple[Any, ...]] = field(default_factory=list)
    name: str = "Table_0"

    def encoded_rows(self) -> list[list[Any]]:
        encoders = [wire_encoder(kind) for _, kind in self.columns]
        return [
            [encode(value) for encode, value in zip(encoders, row, strict=True)]
            for row in self.rows
        ]


def v1_body(table: ResultTable) -> dict[str, Any]:
    return {
        "Tables": [
            {
                "TableName": table.name,
                "Columns": [
                    {"ColumnName": name, "DataType": _V1_DATA_TYPES[kind], "ColumnType": kind}
                    for name, kind in table.columns
                ],
                "Rows": table.encoded_rows(),
            }
        ]
    }


def v2_body(table: ResultTable) -> list[dict[str, Any]]:
    return [
        {
            "FrameType": "DataSetHeader",
            "IsProgressive": False,
            "Version": "v2.0",
            "IsFragmented": False,
            "ErrorReportingPlacement": "EndOfTable",
        },
        {
            "FrameType": "DataTable",
            "TableId": 1,
            "TableKind": "PrimaryResult",
            "TableName": "PrimaryResult",
            "Columns": [{"ColumnName": name, "ColumnType": kind} for name, kind in table.columns],
            "Rows": table.encoded_rows(),
        },
        {"FrameType": "DataSetCompletion", "HasErrors": False, "Cancelled": False},
    ]
