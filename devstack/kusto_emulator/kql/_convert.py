"""Kusto's conversion functions (tostring, tolong, todatetime, ...) as DuckDB SQL.

Kusto conversions never fail a query: a value that does not convert becomes null, hence
TRY_CAST. Dynamic values are unwrapped first, so ``tostring(d.name)`` yields ``abc``, not
``"abc"``; the same unwrapping makes ``d.count > 5`` compare numbers.
"""

from ._errors import KqlError
from ._sql import KUSTO_EPOCH_US, Sql, cast
from ._types import DUCKDB_TYPES, is_numeric

# A timespan as Kusto prints it: [-][d.]hh:mm:ss[.fffffff]. The lambda binds the
# microsecond count once instead of repeating the expression six times.
_TIMESPAN_TEXT = (
    "list_transform([epoch_us({0})], lambda us: "
    "CASE WHEN us < 0 THEN '-' ELSE '' END"
    " || CASE WHEN abs(us) >= 86400000000 THEN CAST(abs(us) // 86400000000 AS VARCHAR) || '.'"
    " ELSE '' END"
    " || printf('%02d:%02d:%02d', abs(us) // 3600000000 % 24, abs(us) // 60000000 % 60,"
    " abs(us) // 1000000 % 60)"
    " || CASE WHEN abs(us) % 1000000 <> 0 THEN printf('.%06d0', abs(us) % 1000000) ELSE '' END"
    ")[1]"
)


def _dynamic_text(value: Sql) -> str:
    """A dynamic scalar as text: strings without their JSON quotes, other values as JSON."""
    return f"({value.text} ->> '$')"


def to_string(value: Sql) -> Sql:
    text, source = value.text, value.kusto_type
    if source == "string":
        return value
    if source == "dynamic":
        converted = (
            f"CASE json_type({text}) WHEN 'VARCHAR' THEN {_dynamic_text(value)}"
            f" WHEN 'NULL' THEN NULL ELSE CAST({text} AS VARCHAR) END"
        )
    elif source == "datetime":
        converted = (
            f"CASE WHEN epoch_us({text}) % 1000000 = 0"
            f" THEN strftime({text}, '%Y-%m-%dT%H:%M:%SZ')"
            f" ELSE strftime({text}, '%Y-%m-%dT%H:%M:%S.%f') || '0Z' END"
        )
    elif source == "timespan":
        converted = _TIMESPAN_TEXT.format(text)
    elif source == "real":  # Kusto prints whole reals without a fraction: 2.0 -> "2"
        converted = (
            f"CASE WHEN {text} = trunc({text}) AND abs({text}) < 1e15"
            f" THEN CAST(CAST({text} AS BIGINT) AS VARCHAR) ELSE CAST({text} AS VARCHAR) END"
        )
    elif source == "decimal":  # without the scale's trailing zeros: 1.2500000000 -> "1.25"
        converted = f"rtrim(rtrim(CAST({text} AS VARCHAR), '0'), '.')"
    else:
        converted = f"CAST({text} AS VARCHAR)"
    # Kusto has no null strings: tostring(null) is "".
    return Sql(f"coalesce({converted}, '')", "string")


def to_number(value: Sql, target: str) -> Sql:
    """tolong, toint, toreal/todouble, todecimal."""
    text, source = value.text, value.kusto_type
    sql_type = DUCKDB_TYPES[target]
    if source == target:
        return value
    if source == "dynamic":
        converted = f"TRY_CAST({_dynamic_text(value)} AS {sql_type})"
    elif source in ("real", "decimal") and target in ("long", "int"):
        converted = f"TRY_CAST(trunc({text}) AS {sql_type})"  # Kusto truncates, CAST rounds
    elif is_numeric(source) or source == "bool":
        converted = f"TRY_CAST({text} AS {sql_type})"
    elif source == "datetime":  # ticks (100 ns) since 0001-01-01
        converted = cast(f"(epoch_us({text}) - ({KUSTO_EPOCH_US})) * 10", target)
    elif source == "timespan":  # ticks
        converted = cast(f"epoch_us({text}) * 10", target)
    else:
        converted = f"TRY_CAST({text} AS {sql_type})"
    return Sql(converted, target)


def to_datetime(value: Sql) -> Sql:
    if value.kusto_type == "datetime":
        return value
    if value.kusto_type not in ("string", "dynamic"):
        raise KqlError(f"cannot convert a value of type {value.kusto_type}")
    text = _dynamic_text(value) if value.kusto_type == "dynamic" else value.text
    # A cast to TIMESTAMP drops a UTC offset; only TIMESTAMPTZ applies it. Text without an
    # offset is UTC in Kusto, whatever the session's time zone.
    return Sql(
        f"CASE WHEN regexp_matches({text}, '[+-][0-9]{{2}}:?[0-9]{{2}}$')"
        f" THEN TRY_CAST({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC'"
        f" ELSE TRY_CAST({text} AS TIMESTAMP) END",
        "datetime",
    )


def to_timespan(value: Sql) -> Sql:
    if value.kusto_type == "timespan":
        return value
    if is_numeric(value.kusto_type):  # ticks
        return Sql(f"to_microseconds(CAST({value.text} // 10 AS BIGINT))", "timespan")
    text = _dynamic_text(value) if value.kusto_type == "dynamic" else value.text
    return Sql(f"TRY_CAST({text} AS INTERVAL)", "timespan")


def to_bool(value: Sql) -> Sql:
    if value.kusto_type == "bool":
        return value
    if is_numeric(value.kusto_type):
        return Sql(f"({value.text} <> 0)", "bool")
    text = _dynamic_text(value) if value.kusto_type == "dynamic" else value.text
    return Sql(f"TRY_CAST({text} AS BOOLEAN)", "bool")


def to_guid(value: Sql) -> Sql:
    if value.kusto_type == "guid":
        return value
    text = _dynamic_text(value) if value.kusto_type == "dynamic" else value.text
    return Sql(f"TRY_CAST({text} AS UUID)", "guid")


def to_dynamic(value: Sql) -> Sql:
    """todynamic/parse_json: JSON text becomes its value; anything else a JSON scalar."""
    text = value.text
    if value.kusto_type == "dynamic":
        return value
    if value.kusto_type == "string":
        return Sql(
            f"CASE WHEN json_valid({text}) THEN CAST({text} AS JSON) ELSE to_json({text}) END",
            "dynamic",
        )
    return Sql(f"to_json({text})", "dynamic")


def convert(value: Sql, target: str) -> Sql:
    """Converts ``value`` to Kusto type ``target`` with Kusto's conversion rules."""
    if target == "string":
        return to_string(value)
    if is_numeric(target):
        return to_number(value, target)
    converters = {
        "datetime": to_datetime,
        "timespan": to_timespan,
        "bool": to_bool,
        "guid": to_guid,
        "dynamic": to_dynamic,
    }
    return converters[target](value)


def unwrap_dynamic(value: Sql, wanted: str) -> Sql:
    """A dynamic operand meeting a typed one takes that type, as Kusto compares them.

    Numbers become real whatever the other side is, so that 4.5 is not rounded to 5 on its
    way to meet a long.
    """
    if value.kusto_type != "dynamic" or wanted == "dynamic":
        return value
    return convert(value, "real" if is_numeric(wanted) else wanted)
