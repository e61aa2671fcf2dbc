"""Reading Avro object container files: columnar where polars can, as JSON records otherwise.

polars reads records, arrays, enums, fixed, logical types and `["null", T]` unions straight
into Arrow. It cannot read maps or unions of several types (it panics on maps), so files whose
schema has those are decoded by fastavro into one JSON text per record instead: slower, a
Python loop, but every Avro value has a JSON form that Kusto's JSON paths can address.
"""

from __future__ import annotations

import base64
import decimal
from pathlib import Path
from typing import Any

import fastavro
import orjson
import polars
import pyarrow as pa


def writer_schema(path: Path) -> Any:
    """The schema in the file's header; raises ValueError if it is not an Avro file."""
    with path.open("rb") as stream:
        return fastavro.reader(stream).writer_schema


def arrow_readable(schema: Any) -> bool:
    """Whether polars can read every type of the schema into Arrow."""
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        return len(branches) == 1 and arrow_readable(branches[0])
    if not isinstance(schema, dict):
        return True  # a primitive, or a named type already checked where it was defined
    kind = schema.get("type")
    if kind == "map":
        return False
    if kind in ("record", "error"):
        return all(arrow_readable(field["type"]) for field in schema.get("fields", []))
    if kind == "array":
        return arrow_readable(schema["items"])
    return arrow_readable(kind) if isinstance(kind, dict | list) else True


def read_arrow(path: Path) -> pa.Table:
    return polars.read_avro(path).to_arrow()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


def read_json_records(path: Path) -> pa.Table:
    """One `json` text column, a record per row."""
    with path.open("rb") as stream:
        records = [
            orjson.dumps(record, default=_json_default).decode()
            for record in fastavro.reader(stream)
        ]
    return pa.table({"json": pa.array(records, pa.string())})
