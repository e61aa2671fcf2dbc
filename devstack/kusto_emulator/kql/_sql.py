"""Small SQL building blocks shared by the expression and operator compilers."""

import math
from dataclasses import dataclass
from datetime import datetime

from ._types import DUCKDB_TYPES

# 0001-01-01T00:00:00 in Unix microseconds: Kusto's bin() counts from there.
KUSTO_EPOCH_US = -62_135_596_800_000_000


@dataclass(frozen=True)
class Sql:
    """A compiled scalar: DuckDB SQL text and its Kusto type."""

    text: str
    kusto_type: str


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def cast(text: str, kusto_type: str) -> str:
    return f"CAST({text} AS {DUCKDB_TYPES[kusto_type]})"


def typed_null(kusto_type: str) -> Sql:
    return Sql(cast("NULL", kusto_type), kusto_type)


def literal(kusto_type: str, value: object) -> Sql:
    """Renders a Python literal value, already decoded by the parser, as typed SQL."""
    if value is None:
        return typed_null(kusto_type)
    if kusto_type == "string":
        return Sql(quote_string(str(value)), "string")
    if kusto_type == "bool":
        return Sql("TRUE" if value else "FALSE", "bool")
    if kusto_type == "real":
        number = float(value)  # type: ignore[arg-type]
        text = repr(number) if math.isfinite(number) else quote_string(str(number))
        return Sql(cast(text, "real"), "real")
    if kusto_type == "datetime":
        assert isinstance(value, datetime)
        return Sql(f"TIMESTAMP '{value.isoformat(sep=' ')}'", "datetime")
    if kusto_type == "timespan":
        return timespan_from_microseconds(str(value))
    if kusto_type in ("guid", "dynamic", "decimal"):
        return Sql(cast(quote_string(str(value)), kusto_type), kusto_type)
    return Sql(cast(str(value), kusto_type), kusto_type)


def timespan_from_microseconds(micros_sql: str) -> Sql:
    return Sql(f"to_microseconds(CAST({micros_sql} AS BIGINT))", "timespan")
