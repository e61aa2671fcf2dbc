"""Kusto scalar types: their DuckDB storage types, text conversion in SQL, and wire encoding."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

import orjson

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "decimal": "DECIMAL(38,10)",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "timespan": "INTERVAL",
    "dynamic": "JSON",
    "guid": "UUID",
}

# Names Kusto accepts in `.create table` besides the canonical ones.
_ALIASES: dict[str, str] = {
    "boolean": "bool",
    "date": "datetime",
    "time": "timespan",
    "double": "real",
    "float": "real",
    "int32": "int",
    "int64": "long",
    "uuid": "guid",
    "uniqueid": "guid",
    "system.string": "string",
    "system.int64": "long",
    "system.int32": "int",
    "system.double": "real",
    "system.boolean": "bool",
    "system.datetime": "datetime",
    "system.timespan": "timespan",
    "system.object": "dynamic",
    "system.guid": "guid",
    "system.data.sqltypes.sqldecimal": "decimal",
}

# The .NET names `.show table T schema as json` reports.
CLR_TYPES: dict[str, str] = {
    "string": "System.String",
    "long": "System.Int64",
    "int": "System.Int32",
    "real": "System.Double",
    "decimal": "System.Data.SqlTypes.SqlDecimal",
    "bool": "System.SByte",
    "datetime": "System.DateTime",
    "timespan": "System.TimeSpan",
    "dynamic": "System.Object",
    "guid": "System.Guid",
}


class UnknownTypeError(ValueError):
    """A column type that Kusto does not have."""


def canonical_type(name: str) -> str:
    """Return the canonical Kusto name of a scalar type, accepting Kusto's aliases."""
    lowered = name.strip().lower()
    lowered = _ALIASES.get(lowered, lowered)
    if lowered not in DUCKDB_TYPES:
        raise UnknownTypeError(f"unknown Kusto scalar type '{name}'")
    return lowered


def duckdb_type(kusto_type: str) -> str:
    return DUCKDB_TYPES[canonical_type(kusto_type)]


# A Kusto timespan literal: [-][d.]hh:mm:ss[.fffffff]
_TIMESPAN_REGEX = r"^(-?)(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$"


def text_to_type_sql(kusto_type: str, text: str) -> str:
    """SQL that converts a VARCHAR expression to the column's type; NULL where it does not parse.

    Kusto stores a null for a value that does not convert, rather than failing the ingestion.
    """
    kind = canonical_type(kusto_type)
    if kind == "string":
        return text
    if kind == "datetime":
        # TIMESTAMPTZ honours an explicit offset; the session time zone is UTC.
        return f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if kind == "timespan":
        return _timespan_sql(text)
    if kind == "dynamic":
        return f"CASE WHEN json_valid({text}) THEN CAST({text} AS JSON) ELSE to_json({text}) END"
    return f"TRY_CAST({text} AS {DUCKDB_TYPES[kind]})"


def _timespan_sql(text: str) -> str:
    def part(group: int, sql_type: str = "BIGINT") -> str:
        return f"TRY_CAST(regexp_extract({text}, '{_TIMESPAN_REGEX}', {group}) AS {sql_type})"

    sign = f"(CASE WHEN regexp_extract({text}, '{_TIMESPAN_REGEX}', 1) = '-' THEN -1 ELSE 1 END)"
    micros = f"CAST(round({part(5, 'DOUBLE')} * 1000000) AS BIGINT)"
    magnitude = (
        f"to_days(CAST(COALESCE({part(2)}, 0) AS INTEGER)) + to_hours({part(3)})"
        f" + to_minutes({part(4)}) + to_microseconds({micros})"
    )
    return f"CASE WHEN regexp_matches({text}, '{_TIMESPAN_REGEX}') THEN {sign} * ({magnitude}) END"


def value_to_type_sql(kusto_type: str, value: str) -> str:
    """SQL that converts a typed column (Parquet, ORC, Avro) to the column's type."""
    kind = canonical_type(kusto_type)
    if kind == "dynamic":
        return f"to_json({value})"
    if kind == "string":
        return f"CAST({value} AS VARCHAR)"
    if kind == "datetime":
        # Via TIMESTAMPTZ: timestamps count as UTC, and text keeps its offset.
        return f"CAST(TRY_CAST({value} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if kind == "timespan":
        return text_to_type_sql(kind, f"CAST({value} AS VARCHAR)")
    # Numbers, booleans, guids: a direct cast, NULL where the value does not fit.
    return f"TRY_CAST({value} AS {DUCKDB_TYPES[kind]})"


def _datetime(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return f"{value.isoformat()}T00:00:00.0000000Z"


def _timespan(value: dt.timedelta) -> str:
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    day_part = f"{days}." if days else ""
    fraction = f".{value.microseconds:06d}0" if value.microseconds else ""
    return f"{sign}{day_part}{hours:02d}:{minutes:02d}:{secs:02d}{fraction}"


def _dynamic(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _real(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def _timespan_or_time(value: Any) -> str:
    if isinstance(value, dt.time):
        value = dt.timedelta(
            hours=value.hour,
            minutes=value.minute,
            seconds=value.second,
            microseconds=value.microsecond,
        )
    return _timespan(value)


def _decimal(value: Any) -> str:
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    return str(value)


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime,
    "timespan": _timespan_or_time,
    "dynamic": _dynamic,
    "real": _real,
    "decimal": _decimal,
    "guid": lambda value: str(value) if isinstance(value, uuid.UUID) else value,
    "long": int,
    "int": int,
}


def wire_encoder(kusto_type: str) -> Callable[[Any], Any]:
    """The function turning a DuckDB value into the JSON value Kusto sends for that type."""
    encode = _ENCODERS.get(kusto_type)
    if encode is None:
        return lambda value: value
    return lambda value: None if value is None else encode(value)
