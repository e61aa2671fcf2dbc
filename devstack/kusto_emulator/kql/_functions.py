"""Kusto scalar functions: name -> arity and a compiler from SQL arguments to SQL.

Handlers raise KqlError without a position; the expression compiler adds the call's.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ._convert import convert, to_string, unwrap_dynamic
from ._errors import KqlError
from ._scope import EXTENT_ID, EXTENT_TAGS, INGESTION_TIME, Scope
from ._sql import KUSTO_EPOCH_US, Sql, cast, literal, quote_identifier, typed_null
from ._types import is_numeric, wider_numeric


@dataclass(frozen=True)
class Function:
    min_args: int
    max_args: int | None  # None: any number
    compile: Callable[[list[Sql], Scope], Sql]


def _now(args: list[Sql], scope: Scope) -> Sql:
    """Kusto evaluates now() once per query, so it is a constant fixed at compile time."""
    now = literal("datetime", scope.now)
    if not args:
        return now
    return _add_timespan(now, args[0], "+")


def _ago(args: list[Sql], scope: Scope) -> Sql:
    return _add_timespan(literal("datetime", scope.now), args[0], "-")


def _add_timespan(when: Sql, span: Sql, op: str) -> Sql:
    if span.kusto_type != "timespan":
        raise KqlError(f"expected a timespan argument, got {span.kusto_type}")
    return Sql(f"({when.text} {op} {span.text})", "datetime")


def _bin(args: list[Sql], scope: Scope) -> Sql:
    """bin(value, size): rounds down to a multiple of size; datetimes count from 0001-01-01."""
    value, size = unwrap_dynamic(args[0], "real"), args[1]
    if value.kusto_type in ("datetime", "timespan"):
        if size.kusto_type != "timespan":
            raise KqlError(f"a {value.kusto_type} needs a timespan bin size")
        size_us = f"epoch_us({size.text})"
        if value.kusto_type == "datetime":
            # Exact integer arithmetic: the offset from year 1 is always positive, so // floors.
            text = (
                f"make_timestamp((epoch_us({value.text}) - ({KUSTO_EPOCH_US})) // {size_us}"
                f" * {size_us} + ({KUSTO_EPOCH_US}))"
            )
        else:
            text = (
                f"to_microseconds(CAST(floor(epoch_us({value.text}) / {size_us}) AS BIGINT)"
                f" * {size_us})"
            )
        return Sql(text, value.kusto_type)
    if not (is_numeric(value.kusto_type) and is_numeric(size.kusto_type)):
        raise KqlError(f"not defined for {value.kusto_type} and {size.kusto_type}")
    result_type = wider_numeric(value.kusto_type, size.kusto_type)
    floored = f"floor({value.text} / {size.text}) * {size.text}"
    return Sql(cast(floored, result_type), result_type)


def _common_type(values: list[Sql]) -> str:
    """The one result type of branches that Kusto requires to agree (numbers widen)."""
    result = values[0].kusto_type
    for value in values[1:]:
        kind = value.kusto_type
        if kind == result:
            continue
        if is_numeric(kind) and is_numeric(result):
            result = wider_numeric(kind, result)
        elif "dynamic" in (kind, result):
            result = "dynamic"
        else:
            raise KqlError(f"arguments differ in type: {result} and {kind}")
    return result


def _conditional(conditions: list[Sql], results: list[Sql]) -> Sql:
    """CASE over (condition, result) pairs; the last result is the ELSE branch."""
    result_type = _common_type(results)
    branches = []
    for condition, result in zip(conditions, results, strict=False):
        condition = unwrap_dynamic(condition, "bool")
        if condition.kusto_type != "bool":
            raise KqlError(f"conditions must be bool, got {condition.kusto_type}")
        branches.append(f"WHEN {condition.text} THEN {convert(result, result_type).text}")
    otherwise = convert(results[-1], result_type).text
    return Sql(f"CASE {' '.join(branches)} ELSE {otherwise} END", result_type)


def _iff(args: list[Sql], scope: Scope) -> Sql:
    return _conditional([args[0]], [args[1], args[2]])


def _case(args: list[Sql], scope: Scope) -> Sql:
    """case(predicate1, then1, predicate2, then2, ..., else)."""
    if len(args) % 2 == 0:
        raise KqlError("expected predicate/value pairs and a final else value")
    return _conditional(args[0:-1:2], [*args[1::2], args[-1]])


def _coalesce(args: list[Sql], scope: Scope) -> Sql:
    result_type = _common_type(args)
    values = ", ".join(convert(arg, result_type).text for arg in args)
    return Sql(f"coalesce({values})", result_type)


def _not(args: list[Sql], scope: Scope) -> Sql:
    value = unwrap_dynamic(args[0], "bool")
    if value.kusto_type != "bool":
        raise KqlError(f"expected a bool argument, got {value.kusto_type}")
    return Sql(f"(NOT {value.text})", "bool")


def _is_empty(value: Sql) -> str:
    """Kusto strings are never null: an empty string is the missing value."""
    if value.kusto_type == "string":
        return f"(coalesce({value.text}, '') = '')"
    if value.kusto_type == "dynamic":
        return f"({to_string(value).text} = '')"
    return f"({value.text} IS NULL)"


def _hidden_column(scope: Scope, column: str, kusto_type: str) -> Sql:
    """Row metadata; rows that no longer come from one extent (after summarize) have none."""
    if column not in scope.hidden:
        return typed_null(kusto_type)
    return Sql(quote_identifier(column), kusto_type)


def _extent_id(args: list[Sql], scope: Scope) -> Sql:
    stored = _hidden_column(scope, EXTENT_ID, "string")
    return Sql(f"TRY_CAST({stored.text} AS UUID)", "guid")


def _start_of(unit: str) -> Function:
    def compile_start(args: list[Sql], scope: Scope) -> Sql:
        when = _datetime_argument(args[0])
        if unit == "week":  # Kusto's weeks start on Sunday, DuckDB's (ISO) on Monday
            return Sql(
                f"(date_trunc('week', {when} + INTERVAL 1 DAY) - INTERVAL 1 DAY)", "datetime"
            )
        return Sql(f"date_trunc('{unit}', {when})", "datetime")

    return Function(1, 1, compile_start)


def _date_part(part: str) -> Function:
    def compile_part(args: list[Sql], scope: Scope) -> Sql:
        return Sql(f"CAST({part}({_datetime_argument(args[0])}) AS INTEGER)", "int")

    return Function(1, 1, compile_part)


def _datetime_argument(value: Sql) -> str:
    value = unwrap_dynamic(value, "datetime")
    if value.kusto_type != "datetime":
        raise KqlError(f"expected a datetime, got {value.kusto_type}")
    return value.text


def _split(args: list[Sql], scope: Scope) -> Sql:
    parts = f"to_json(string_split({to_string(args[0]).text}, {to_string(args[1]).text}))"
    if len(args) == 2:
        return Sql(parts, "dynamic")
    return Sql(f"json_extract({parts}, '$[' || {args[2].text} || ']')", "dynamic")


def _extract(args: list[Sql], scope: Scope) -> Sql:
    """extract(regex, group, text): the group's text, "" when nothing matches."""
    pattern, group, text = to_string(args[0]).text, args[1].text, to_string(args[2]).text
    return Sql(f"regexp_extract({text}, {pattern}, CAST({group} AS INTEGER))", "string")


def _replace_string(args: list[Sql], scope: Scope) -> Sql:
    text, lookup, rewrite = (to_string(arg).text for arg in args)
    return Sql(f"replace({text}, {lookup}, {rewrite})", "string")


def _indexof(args: list[Sql], scope: Scope) -> Sql:
    """0-based; -1 when absent, as Kusto (strpos counts from 1 and gives 0)."""
    return Sql(f"(strpos({to_string(args[0]).text}, {to_string(args[1]).text}) - 1)", "long")


def _strcat(args: list[Sql], scope: Scope) -> Sql:
    return Sql(f"concat({', '.join(to_string(arg).text for arg in args)})", "string")


def _substring(args: list[Sql], scope: Scope) -> Sql:
    text, start = to_string(args[0]).text, args[1].text
    if len(args) == 2:
        return Sql(f"substr({text}, {start} + 1)", "string")
    return Sql(f"substr({text}, {start} + 1, {args[2].text})", "string")


def _real_function(sql_function: str, arity: int) -> Function:
    def compile_real(args: list[Sql], scope: Scope) -> Sql:
        values = [unwrap_dynamic(arg, "real") for arg in args]
        if not all(is_numeric(value.kusto_type) for value in values):
            raise KqlError("arguments must be numbers")
        joined = ", ".join(cast(value.text, "real") for value in values)
        return Sql(f"{sql_function}({joined})", "real")

    return Function(arity, arity, compile_real)


def _string_function(sql_function: str, result_type: str) -> Function:
    return Function(
        1, 1, lambda args, scope: Sql(f"{sql_function}({to_string(args[0]).text})", result_type)
    )


def _conversion(target: str) -> Function:
    return Function(1, 1, lambda args, scope: convert(args[0], target))


def _numeric_function(sql_function: str, max_args: int) -> Function:
    def compile_numeric(args: list[Sql], scope: Scope) -> Sql:
        value = unwrap_dynamic(args[0], "real")
        if not is_numeric(value.kusto_type):
            raise KqlError(f"expected a number, got {value.kusto_type}")
        rest = "".join(f", CAST({arg.text} AS INTEGER)" for arg in args[1:])  # digits
        return Sql(cast(f"{sql_function}({value.text}{rest})", value.kusto_type), value.kusto_type)

    return Function(1, max_args, compile_numeric)


def _predicate(build: Callable[[Sql], str]) -> Function:
    return Function(1, 1, lambda args, scope: Sql(build(args[0]), "bool"))


FUNCTIONS: dict[str, Function] = {
    "now": Function(0, 1, _now),
    "ago": Function(1, 1, _ago),
    "bin": Function(2, 2, _bin),
    "floor": Function(2, 2, _bin),
    "iff": Function(3, 3, _iff),
    "iif": Function(3, 3, _iff),
    "case": Function(3, None, _case),
    "coalesce": Function(1, None, _coalesce),
    "not": Function(1, 1, _not),
    "isnull": _predicate(lambda value: f"({value.text} IS NULL)"),
    "isnotnull": _predicate(lambda value: f"({value.text} IS NOT NULL)"),
    "isempty": _predicate(_is_empty),
    "isnotempty": _predicate(lambda value: f"(NOT {_is_empty(value)})"),
    "strlen": _string_function("length", "long"),
    "tolower": _string_function("lower", "string"),
    "toupper": _string_function("upper", "string"),
    "strcat": Function(1, None, _strcat),
    "replace_string": Function(3, 3, _replace_string),
    "indexof": Function(2, 2, _indexof),
    "split": Function(2, 3, _split),
    "extract": Function(3, 3, _extract),
    "startofday": _start_of("day"),
    "startofweek": _start_of("week"),
    "startofmonth": _start_of("month"),
    "startofyear": _start_of("year"),
    "getyear": _date_part("year"),
    "getmonth": _date_part("month"),
    "dayofmonth": _date_part("day"),
    "hourofday": _date_part("hour"),
    "sqrt": _real_function("sqrt", 1),
    "exp": _real_function("exp", 1),
    "log": _real_function("ln", 1),
    "log10": _real_function("log10", 1),
    "pow": _real_function("pow", 2),
    "substring": Function(2, 3, _substring),
    "tostring": _conversion("string"),
    "toint": _conversion("int"),
    "tolong": _conversion("long"),
    "todouble": _conversion("real"),
    "toreal": _conversion("real"),
    "todatetime": _conversion("datetime"),
    "todecimal": _conversion("decimal"),
    "tobool": _conversion("bool"),
    "toboolean": _conversion("bool"),
    "totimespan": _conversion("timespan"),
    "toguid": _conversion("guid"),
    "todynamic": _conversion("dynamic"),
    "parse_json": _conversion("dynamic"),
    "abs": _numeric_function("abs", 1),
    "round": _numeric_function("round", 2),
    "array_length": Function(
        1, 1, lambda args, scope: Sql(f"CAST(json_array_length({args[0].text}) AS BIGINT)", "long")
    ),
    "ingestion_time": Function(
        0, 0, lambda args, scope: _hidden_column(scope, INGESTION_TIME, "datetime")
    ),
    "extent_id": Function(0, 0, _extent_id),
    "extent_tags": Function(
        0, 0, lambda args, scope: _hidden_column(scope, EXTENT_TAGS, "dynamic")
    ),
}
