"""Scalar KQL expressions, literals and print, run on an in-memory DuckDB (no tables)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import duckdb
import pytest

from devstack.kusto_emulator.kql import compile_query
from devstack.kusto_emulator.kusto_types import DUCKDB_TYPES

NOW = datetime(2024, 3, 1, 12, 0, 0)
GUID = "aaaaaaaa-0000-0000-0000-000000000001"


class NoTables:
    database = "db"

    def columns(self, table: str) -> list[tuple[str, str]]:
        raise KeyError(table)


NO_TABLES = NoTables()


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def run(db: duckdb.DuckDBPyConnection, kql: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    """Compiles and executes; the declared Kusto types must be what DuckDB returns."""
    compiled = compile_query(kql, NO_TABLES, now=NOW)
    result = db.sql(compiled.sql)
    assert [str(t) for t in result.types] == [DUCKDB_TYPES[kind] for _, kind in compiled.columns]
    return compiled.columns, result.fetchall()


def scalar(db: duckdb.DuckDBPyConnection, expr: str) -> tuple[object, str]:
    """Value and Kusto type of one expression, via ``print``."""
    columns, result = run(db, f"print v = {expr}")
    return result[0][0], columns[0][1]


@pytest.mark.parametrize(
    ("expr", "value", "kusto_type"),
    [
        ("1", 1, "long"),
        ("1.5", 1.5, "real"),
        ("1e3", 1000.0, "real"),
        ("-7", -7, "long"),
        ("true", True, "bool"),
        ("false", False, "bool"),
        ("'it\\'s'", "it's", "string"),
        ('"say \\"hi\\"\\n"', 'say "hi"\n', "string"),
        ("@'C:\\path'", "C:\\path", "string"),
        ("int(5)", 5, "int"),
        ("long(null)", None, "long"),
        ("real(2)", 2.0, "real"),
        ("real(-inf)", float("-inf"), "real"),
        ("datetime(2024-01-02)", datetime(2024, 1, 2), "datetime"),
        ("datetime(2024-01-02 03:04:05)", datetime(2024, 1, 2, 3, 4, 5), "datetime"),
        ("datetime(2024-01-02T03:04:05.123Z)", datetime(2024, 1, 2, 3, 4, 5, 123000), "datetime"),
        ("datetime(2024-01-02T05:04:05+02:00)", datetime(2024, 1, 2, 3, 4, 5), "datetime"),
        ('datetime("2024-01-02")', datetime(2024, 1, 2), "datetime"),
        ("TRUE", True, "bool"),
        ("1h", timedelta(hours=1), "timespan"),
        ("30m", timedelta(minutes=30), "timespan"),
        ("10s", timedelta(seconds=10), "timespan"),
        ("1d", timedelta(days=1), "timespan"),
        ("100ms", timedelta(milliseconds=100), "timespan"),
        ("1.5h", timedelta(minutes=90), "timespan"),
        ("timespan(1.02:03:04)", timedelta(days=1, hours=2, minutes=3, seconds=4), "timespan"),
        ("guid(aaaaaaaa-0000-0000-0000-000000000001)", UUID(GUID), "guid"),
        ("1 + 2 * 3", 7, "long"),
        ("(1 + 2) * 3", 9, "long"),
        ("7 / 2", 3, "long"),  # integer division, as Kusto
        ("-7 / 2", -3, "long"),  # truncates toward zero
        ("7 / 2.0", 3.5, "real"),
        ("7 % 3", 1, "long"),
        ("int(7) / int(2)", 3, "int"),
        ("2 - -1", 3, "long"),
        ("now()", NOW, "datetime"),
        ("ago(1h)", NOW - timedelta(hours=1), "datetime"),
        ("now(-1d)", NOW - timedelta(days=1), "datetime"),
        ("now() - ago(2d)", timedelta(days=2), "timespan"),
        ("datetime(2024-01-02) + 1d", datetime(2024, 1, 3), "datetime"),
        ("datetime(2024-01-02) - datetime(2024-01-01)", timedelta(days=1), "timespan"),
        ("1h * 2", timedelta(hours=2), "timespan"),
        ("1h * 1.5", timedelta(minutes=90), "timespan"),
        ("1h / 4", timedelta(minutes=15), "timespan"),
        ("1h / 30m", 2.0, "real"),
        ("1h + 30m", timedelta(minutes=90), "timespan"),
        ("bin(datetime(2024-01-01 10:37:12), 1h)", datetime(2024, 1, 1, 10), "datetime"),
        ("bin(datetime(2024-01-01 10:37:12), 15m)", datetime(2024, 1, 1, 10, 30), "datetime"),
        ("bin(datetime(2024-01-04 10:00), 7d)", datetime(2024, 1, 1), "datetime"),  # Mondays
        ("bin(datetime(2024-01-01 10:37:12), 1d)", datetime(2024, 1, 1), "datetime"),
        ("bin(37, 10)", 30, "long"),
        ("bin(-1, 10)", -10, "long"),
        ("bin(3.7, 0.5)", 3.5, "real"),
        ("bin(90m, 1h)", timedelta(hours=1), "timespan"),
        ("floor(37, 10)", 30, "long"),
        ("tostring(42)", "42", "string"),
        ("tostring(1.5)", "1.5", "string"),
        ("tostring(2.0)", "2", "string"),
        ("tostring(decimal(1.25))", "1.25", "string"),
        ("tostring(true)", "true", "string"),
        ("tostring(datetime(2024-01-02 03:04:05))", "2024-01-02T03:04:05Z", "string"),
        ("tostring(datetime(2024-01-02 03:04:05.5))", "2024-01-02T03:04:05.5000000Z", "string"),
        ("tostring(90m)", "01:30:00", "string"),
        ("tostring(1d + 2h + 500ms)", "1.02:00:00.5000000", "string"),
        ("tostring(-1h)", "-01:00:00", "string"),
        ("tostring(long(null))", "", "string"),
        ('tostring(dynamic({"a": 1}))', '{"a":1}', "string"),
        ('tostring(dynamic("text"))', "text", "string"),
        ("tostring(parse_json('null'))", "", "string"),
        ("toint('12')", 12, "int"),
        ("toint('abc')", None, "int"),
        ("tolong(2.9)", 2, "long"),
        ("tolong(-2.9)", -2, "long"),
        ("tolong('12')", 12, "long"),
        ("tolong(true)", 1, "long"),
        ("todouble('1.25')", 1.25, "real"),
        ("toreal(3)", 3.0, "real"),
        ("todatetime('2024-01-02T03:04:05Z')", datetime(2024, 1, 2, 3, 4, 5), "datetime"),
        ("todatetime('not a date')", None, "datetime"),
        ("todatetime('2024-01-02T03:04:05+02:00')", datetime(2024, 1, 2, 1, 4, 5), "datetime"),
        ("todatetime('2024-01-02 03:04')", datetime(2024, 1, 2, 3, 4), "datetime"),
        ("strlen('héllo')", 5, "long"),
        ("tolower('MiXeD')", "mixed", "string"),
        ("toupper('MiXeD')", "MIXED", "string"),
        ("strcat('a', 1, 'b', true)", "a1btrue", "string"),
        ("substring('abcdef', 2, 3)", "cde", "string"),
        ("iff(1 > 2, 'yes', 'no')", "no", "string"),
        ("iif(true, 1, 2.5)", 1.0, "real"),
        ("case(1 > 2, 'a', 2 > 1, 'b', 'c')", "b", "string"),
        ("case(false, 1, 2)", 2, "long"),
        ("coalesce(long(null), 5)", 5, "long"),
        ("replace_string('a-b-c', '-', '+')", "a+b+c", "string"),
        ("indexof('abcdef', 'cd')", 2, "long"),
        ("indexof('abcdef', 'x')", -1, "long"),
        ("split('a,b,c', ',')", '["a","b","c"]', "dynamic"),
        ("split('a,b,c', ',', 1)", '"b"', "dynamic"),
        ("extract('id=([0-9]+)', 1, 'x id=42 y')", "42", "string"),
        ("extract('id=([0-9]+)', 1, 'nothing')", "", "string"),
        ("startofday(datetime(2024-01-03 10:20))", datetime(2024, 1, 3), "datetime"),
        ("startofweek(datetime(2024-01-03 10:20))", datetime(2023, 12, 31), "datetime"),  # Sunday
        ("startofmonth(datetime(2024-01-03 10:20))", datetime(2024, 1, 1), "datetime"),
        ("startofyear(datetime(2024-05-03))", datetime(2024, 1, 1), "datetime"),
        ("getyear(datetime(2024-05-03))", 2024, "int"),
        ("getmonth(datetime(2024-05-03))", 5, "int"),
        ("dayofmonth(datetime(2024-05-03))", 3, "int"),
        ("hourofday(datetime(2024-05-03 17:00))", 17, "int"),
        ("sqrt(16)", 4.0, "real"),
        ("pow(2, 10)", 1024.0, "real"),
        ("log10(1000)", 3.0, "real"),
        ("exp(0)", 1.0, "real"),
        ("log(exp(2))", 2.0, "real"),
        ("todecimal('1.5')", Decimal("1.5"), "decimal"),
        ("tobool('true')", True, "bool"),
        ("toboolean(0)", False, "bool"),
        ("totimespan('01:30:00')", timedelta(minutes=90), "timespan"),
        ("toguid('" + GUID + "')", UUID(GUID), "guid"),
        ("todynamic('[1, 2]')", "[1, 2]", "dynamic"),
        ("todynamic('not json')", '"not json"', "dynamic"),
        ("1 == 1", True, "bool"),
        ("'a' < 'b'", True, "bool"),
        ("'ABC' =~ 'abc'", True, "bool"),
        ("abs(-3)", 3, "long"),
        ("round(2.567, 2)", 2.57, "real"),
        ("array_length(dynamic([1, 2, 3]))", 3, "long"),
        ("parse_json('{\"a\": 5}').a", "5", "dynamic"),
        ("ingestion_time()", None, "datetime"),  # no table, no extent
    ],
)
def test_scalar_expression(
    db: duckdb.DuckDBPyConnection, expr: str, value: object, kusto_type: str
) -> None:
    assert scalar(db, expr) == (value, kusto_type)


def test_dynamic_literal_and_access(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db, 'print d = dynamic({"a": {"b c": [10, 20]}}) | project v = d.a["b c"][1], w = d.a.x'
    )
    assert columns == [("v", "dynamic"), ("w", "dynamic")]
    assert result == [("20", None)]


@pytest.mark.parametrize(
    ("literal", "json_text"),
    [
        ('dynamic({"a": [1, 2.5, true, null]})', '{"a":[1,2.5,true,null]}'),
        ("dynamic(['x', \"y\"])", '["x","y"]'),
        ("dynamic({key: -1})", '{"key":-1}'),
        ("dynamic(null)", None),
    ],
)
def test_dynamic_literals(db: duckdb.DuckDBPyConnection, literal: str, json_text: str) -> None:
    assert scalar(db, literal) == (json_text, "dynamic")


def test_print_default_names(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "print 1, named = 'x', 2.5")
    assert columns == [("print_0", "long"), ("named", "string"), ("print_2", "real")]
    assert result == [(1, "x", 2.5)]


def test_print_feeds_pipes(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "print a = 2 | extend b = a * 3") == ([("a", "long"), ("b", "long")], [(2, 6)])


def test_now_is_the_current_utc_time_by_default(db: duckdb.DuckDBPyConnection) -> None:
    compiled = compile_query("print now()", NO_TABLES)
    (value,) = db.execute(compiled.sql).fetchall()[0]
    assert abs(value - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
