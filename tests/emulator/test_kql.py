"""KQL tabular operators, checked by running the compiled SQL on an in-memory DuckDB laid out
like the emulator's storage: ``"db"."Events"`` with hidden extent columns, ``"db"."__extents"``.

Scalar expressions are in test_kql_expressions.py, refused queries in test_kql_errors.py.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import duckdb
import pytest

from devstack.kusto_emulator import kql as kql_package
from devstack.kusto_emulator.kql import Catalog, CompiledQuery, KqlError, compile_query
from devstack.kusto_emulator.kusto_types import DUCKDB_TYPES

NOW = datetime(2024, 3, 1, 12, 0, 0)

EVENTS = [
    ("name", "string"),
    ("n", "long"),
    ("i", "int"),
    ("x", "real"),
    ("ok", "bool"),
    ("ts", "datetime"),
    ("dur", "timespan"),
    ("d", "dynamic"),
    ("g", "guid"),
    ("amount", "decimal"),
]

EXTENT_1 = "11111111-1111-1111-1111-111111111111"
EXTENT_2 = "22222222-2222-2222-2222-222222222222"
GUID_1 = "aaaaaaaa-0000-0000-0000-000000000001"

ROWS = [
    # name, n, i, x, ok, ts, dur, d, g, amount, extent, ingested
    ("Alpha one", 1, 10, 1.5, True, "2024-01-01 10:15:00", "1 hour",
     '{"a":{"b":"x"},"k":3,"s":"7"}', GUID_1, "1.25", EXTENT_1, "2024-02-01 00:00:00"),
    ("beta", 2, 20, 2.5, False, "2024-01-01 10:45:00", "30 minutes",
     '{"a":{"b":"y"},"k":5}', None, "2.5", EXTENT_1, "2024-02-01 00:00:00"),
    ("Gamma-ray", 3, 30, None, True, "2024-01-01 11:05:00", "10 seconds",
     "[1,2,3]", None, None, EXTENT_2, "2024-02-02 00:00:00"),
    ("", -4, None, -0.5, None, None, None, None, None, "0", EXTENT_2, "2024-02-02 00:00:00"),
]  # fmt: skip


class FakeCatalog:
    database = "db"

    def columns(self, table: str) -> list[tuple[str, str]]:
        tables = {"Events": EVENTS, "Empty": [("v", "long")], "Sparse": [("s", "string")]}
        return list(tables[table])


CATALOG: Catalog = FakeCatalog()


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute('CREATE SCHEMA "db"')
    columns = ", ".join(f'"{name}" {DUCKDB_TYPES[kind]}' for name, kind in EVENTS)
    connection.execute(
        f'CREATE TABLE "db"."Events" ({columns}, __extent_id VARCHAR, __ingestion_time TIMESTAMP)'
    )
    connection.execute(
        'CREATE TABLE "db"."Empty" (v BIGINT, __extent_id VARCHAR, __ingestion_time TIMESTAMP)'
    )
    connection.execute(
        'CREATE TABLE "db"."Sparse" (s VARCHAR, __extent_id VARCHAR, __ingestion_time TIMESTAMP)'
    )
    connection.execute("""INSERT INTO "db"."Sparse" VALUES (NULL, NULL, NULL), ('a', NULL, NULL)""")
    connection.execute(
        'CREATE TABLE "db"."__extents" (extent_id VARCHAR, table_name VARCHAR, tags VARCHAR[],'
        " row_count BIGINT, created TIMESTAMP)"
    )
    placeholders = ", ".join("?" for _ in ROWS[0])
    connection.executemany(f'INSERT INTO "db"."Events" VALUES ({placeholders})', ROWS)
    connection.execute(
        'INSERT INTO "db"."__extents" VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)',
        [EXTENT_1, "Events", ["ingest-by:b1", "drop-by:b1"], 2, NOW]
        + [EXTENT_2, "Events", [], 2, NOW],
    )
    yield connection
    connection.close()


def run(db: duckdb.DuckDBPyConnection, kql: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    """Compiles and executes; the declared Kusto types must be what DuckDB returns."""
    compiled = compile_query(kql, CATALOG, now=NOW)
    result = db.sql(compiled.sql)
    assert [str(t) for t in result.types] == [DUCKDB_TYPES[kind] for _, kind in compiled.columns]
    assert result.columns == [name for name, _ in compiled.columns]
    return compiled.columns, result.fetchall()


def rows(db: duckdb.DuckDBPyConnection, kql: str) -> list[tuple]:
    return run(db, kql)[1]


def names(db: duckdb.DuckDBPyConnection, kql: str) -> list[str]:
    """The ``name`` values of the rows ``kql`` returns, sorted (row order not in question)."""
    return sorted(row[0] for row in rows(db, f"{kql} | project name"))


# ---------------------------------------------------------------- the interface


def test_public_interface_is_explicit() -> None:
    assert sorted(kql_package.__all__) == ["Catalog", "CompiledQuery", "KqlError", "compile_query"]
    assert all(hasattr(kql_package, name) for name in kql_package.__all__)


def test_compiled_query_carries_sql_and_schema() -> None:
    compiled = compile_query("Events | project name", CATALOG)
    assert isinstance(compiled, CompiledQuery)
    assert compiled.columns == [("name", "string")]
    assert '"db"."Events"' in compiled.sql


def test_table_reference_returns_user_columns_without_hidden_ones(
    db: duckdb.DuckDBPyConnection,
) -> None:
    columns, result = run(db, "Events")
    assert columns == EVENTS
    assert len(result) == 4
    assert all(len(row) == len(EVENTS) for row in result)


def test_catalog_type_aliases_and_odd_names_are_accepted(
    db: duckdb.DuckDBPyConnection,
) -> None:
    class OddCatalog:
        database = "odd db"

        def columns(self, table: str) -> list[tuple[str, str]]:
            return [('we"ird col', "System.String"), ("amount", "double")]

    db.execute('CREATE SCHEMA IF NOT EXISTS "odd db"')
    db.execute(
        'CREATE OR REPLACE TABLE "odd db"."my ""table""" ("we""ird col" VARCHAR, amount DOUBLE,'
        " __extent_id VARCHAR, __ingestion_time TIMESTAMP)"
    )
    db.execute('INSERT INTO "odd db"."my ""table""" VALUES (\'v\', 2.5, NULL, NULL)')
    compiled = compile_query(
        "['my \"table\"'] | project ['we\"ird col'], doubled = amount * 2", OddCatalog()
    )
    assert compiled.columns == [('we"ird col', "string"), ("doubled", "real")]
    assert db.execute(compiled.sql).fetchall() == [("v", 5.0)]


def test_bracketed_table_and_column_names(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "['Events'] | where ['n'] == 2 | project ['the name'] = name")
    assert columns == [("the name", "string")]
    assert result == [("beta",)]


# ---------------------------------------------------------------- where


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ("n == 2", ["beta"]),
        ("n != 2", ["", "Alpha one", "Gamma-ray"]),
        ("n <> 2", ["", "Alpha one", "Gamma-ray"]),
        ("n < 2", ["", "Alpha one"]),
        ("n <= 2", ["", "Alpha one", "beta"]),
        ("n > 2", ["Gamma-ray"]),
        ("n >= 2", ["Gamma-ray", "beta"]),
        ("x > 0", ["Alpha one", "beta"]),  # null compares false
        ("name == 'beta'", ["beta"]),
        ("name == 'BETA'", []),  # == is case-sensitive
        ("name =~ 'BETA'", ["beta"]),
        ("name !~ 'BETA'", ["", "Alpha one", "Gamma-ray"]),
        ("name has 'one'", ["Alpha one"]),
        ("name has 'ONE'", ["Alpha one"]),  # has is case-insensitive
        ("name has 'alp'", []),  # has matches whole terms only
        ("name has 'ray'", ["Gamma-ray"]),
        ("name !has 'one'", ["", "Gamma-ray", "beta"]),
        ("name has_cs 'ONE'", []),
        ("name hasprefix 'alp'", ["Alpha one"]),
        ("name contains 'ET'", ["beta"]),
        ("name !contains 'a'", [""]),
        ("name contains_cs 'ET'", []),
        ("name startswith 'al'", ["Alpha one"]),
        ("name !startswith 'al'", ["", "Gamma-ray", "beta"]),
        ("name endswith 'RAY'", ["Gamma-ray"]),
        ("name endswith_cs 'RAY'", []),
        ("name has_any ('one', 'nothing')", ["Alpha one"]),
        ("name has_any ('ONE', 'beta')", ["Alpha one", "beta"]),
        ("name has_all ('alpha', 'one')", ["Alpha one"]),
        ("name has_all ('alpha', 'two')", []),
        ("name matches regex '^[A-Z]'", ["Alpha one", "Gamma-ray"]),
        ("name in ('beta', 'Alpha one', 'nope')", ["Alpha one", "beta"]),
        ("name in ('BETA')", []),
        ("name in~ ('BETA')", ["beta"]),
        ("name !in ('beta')", ["", "Alpha one", "Gamma-ray"]),
        ("n in (dynamic([1, 3]))", ["Alpha one", "Gamma-ray"]),
        ("n between (1 .. 2)", ["Alpha one", "beta"]),
        ("n between(1..2)", ["Alpha one", "beta"]),
        ("n !between (1 .. 2)", ["", "Gamma-ray"]),
        ("ts between (datetime(2024-01-01 10:30) .. 1h)", ["Gamma-ray", "beta"]),
        ("isnull(x)", ["Gamma-ray"]),
        ("isnotnull(x)", ["", "Alpha one", "beta"]),
        ("isempty(name)", [""]),
        ("isnotempty(name)", ["Alpha one", "Gamma-ray", "beta"]),
        ("isnull(ts)", [""]),
        ("isempty(i)", [""]),
        ("not(ok)", ["beta"]),
        ("ok", ["Alpha one", "Gamma-ray"]),
        ("n > 1 and ok", ["Gamma-ray"]),
        ("n == 1 or n == 3", ["Alpha one", "Gamma-ray"]),
        ("n == 1 or n == 2 and ok", ["Alpha one"]),  # and binds tighter than or
        ("not(n == 1 or n == 2)", ["", "Gamma-ray"]),
        ("ts > datetime(2024-01-01 10:30)", ["Gamma-ray", "beta"]),
        ("ts < ago(30d)", ["Alpha one", "Gamma-ray", "beta"]),
        ("dur >= 30m", ["Alpha one", "beta"]),
        ("d.k > 4", ["beta"]),
        ("d.k > 4.5", ["beta"]),
        ("d.k == 3", ["Alpha one"]),
        ("d.a.b == 'y'", ["beta"]),
        ("d['a']['b'] == 'x'", ["Alpha one"]),
        ("d[1] == 2", ["Gamma-ray"]),
        ("tolong(d.s) == 7", ["Alpha one"]),
        ("g == guid(aaaaaaaa-0000-0000-0000-000000000001)", ["Alpha one"]),
        ("amount > 2", ["beta"]),
        ("n % 2 == 0", ["", "beta"]),
    ],
)
def test_where(db: duckdb.DuckDBPyConnection, predicate: str, expected: list[str]) -> None:
    assert names(db, f"Events | where {predicate}") == expected


def test_filter_is_where_and_pipes_chain(db: duckdb.DuckDBPyConnection) -> None:
    assert names(db, "Events | filter n > 0 | where ok") == ["Alpha one", "Gamma-ray"]


def test_null_strings_read_as_empty_strings(db: duckdb.DuckDBPyConnection) -> None:
    # Kusto has no null strings; storage may hold NULL for a value ingestion left out.
    assert sorted(rows(db, "Sparse | project s, l = strlen(s)")) == [("", 0), ("a", 1)]
    assert rows(db, "Sparse | where s == '' | count") == [(1,)]
    assert rows(db, "Sparse | where s !in ('a') | count") == [(1,)]


def test_where_needs_a_bool(db: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(KqlError, match=r"'where' needs a bool predicate, got long at position 15"):
        compile_query("Events | where n + 1", CATALOG)


# ---------------------------------------------------------------- project, extend


def test_project_names_and_kusto_default_names(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | where n == 1"
        " | project name, doubled = n * 2, n + 1, strlen(name), d.a.b, tostring(d.k), bin(ts, 1h)",
    )
    assert columns == [
        ("name", "string"),
        ("doubled", "long"),
        ("Column1", "long"),
        ("Column2", "long"),
        ("d_a_b", "dynamic"),
        ("d_k", "string"),
        ("ts", "datetime"),
    ]
    assert result == [("Alpha one", 2, 2, 9, '"x"', "3", datetime(2024, 1, 1, 10))]


def test_project_unknown_column_is_an_error() -> None:
    with pytest.raises(KqlError, match=r"unknown column or name 'nope' at position 23"):
        compile_query("Events | project name, nope", CATALOG)


def test_project_away_and_rename(db: duckdb.DuckDBPyConnection) -> None:
    columns, _ = run(db, "Events | project-away d, g, amount, i* | project-rename label = name")
    assert columns == [("label", "string"), ("n", "long"), ("x", "real"), ("ok", "bool"),
                       ("ts", "datetime"), ("dur", "timespan")]  # fmt: skip
    with pytest.raises(KqlError, match=r"project-away: unknown column 'nope' at position 22"):
        compile_query("Events | project-away nope", CATALOG)


def test_project_keep_and_reorder(db: duckdb.DuckDBPyConnection) -> None:
    columns, _ = run(db, "Events | project-keep ts, n*, name")
    assert columns == [("name", "string"), ("n", "long"), ("ts", "datetime")]  # input order
    columns, _ = run(db, "Events | project-keep name, x, ts | project-reorder ts, x")
    assert columns == [("ts", "datetime"), ("x", "real"), ("name", "string")]


def test_extend_adds_replaces_and_sees_earlier_items(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db, "Events | where n == 2 | extend n = n * 10, m = n + 1, strlen(name) | project-away d"
    )
    # Kusto removes a replaced column and appends its new value, as it does new ones.
    assert [name for name, _ in columns][-4:] == ["amount", "n", "m", "Column1"]
    assert "n" not in [name for name, _ in columns][:-3]
    assert result[0][-3:] == (20, 21, 4)


def test_names_differing_only_in_case_are_different_columns(
    db: duckdb.DuckDBPyConnection,
) -> None:
    # KQL names are case-sensitive; DuckDB binds them case-insensitively.
    columns, result = run(
        db, "Events | where n == 2 | extend Name = toupper(name) | project name, Name"
    )
    assert columns == [("name", "string"), ("Name", "string")]
    assert result == [("beta", "BETA")]
    assert rows(db, "print a = 1, A = 2") == [(1, 2)]


def test_renamed_and_removed_columns_can_be_reused(db: duckdb.DuckDBPyConnection) -> None:
    kql = (
        "Events | where n == 2 | project-rename old = name | project-away x"
        " | extend x = 'new', name = strcat(old, '!') | project old, name, x"
    )
    assert rows(db, kql) == [("beta", "beta!", "new")]


# ---------------------------------------------------------------- take, top, sort


def test_take_and_limit(db: duckdb.DuckDBPyConnection) -> None:
    assert len(rows(db, "Events | take 2")) == 2
    assert len(rows(db, "Events | limit 3")) == 3
    assert len(rows(db, "let k = 1; Events | take k")) == 1


def test_sort_defaults_to_descending(db: duckdb.DuckDBPyConnection) -> None:
    assert rows(db, "Events | order by n | project n") == [(3,), (2,), (1,), (-4,)]
    assert rows(db, "Events | sort by n asc | project n") == [(-4,), (1,), (2,), (3,)]


def test_sort_nulls_follow_kusto(db: duckdb.DuckDBPyConnection) -> None:
    # Kusto: nulls last when descending, first when ascending, unless told otherwise.
    assert rows(db, "Events | sort by x | project x") == [(2.5,), (1.5,), (-0.5,), (None,)]
    assert rows(db, "Events | sort by x asc | project x") == [(None,), (-0.5,), (1.5,), (2.5,)]
    assert rows(db, "Events | sort by x desc nulls first | project x")[0] == (None,)
    assert rows(db, "Events | sort by x asc nulls last | project x")[-1] == (None,)


def test_sort_by_several_keys_and_expressions(db: duckdb.DuckDBPyConnection) -> None:
    result = rows(db, "Events | sort by ok desc, n * -1 asc | project name")
    assert result == [("Gamma-ray",), ("Alpha one",), ("beta",), ("",)]


def test_order_survives_later_row_preserving_operators(db: duckdb.DuckDBPyConnection) -> None:
    result = rows(
        db,
        "Events | sort by n asc | where n > -10 | extend k = n * 2 | project name, k"
        " | project-away name | take 3",
    )
    assert result == [(-8,), (2,), (4,)]


def test_top(db: duckdb.DuckDBPyConnection) -> None:
    assert rows(db, "Events | top 2 by n | project n") == [(3,), (2,)]
    assert rows(db, "Events | top 2 by n asc | project n") == [(-4,), (1,)]
    assert rows(db, "Events | top 1 by strlen(name) desc | project name") == [("Alpha one",)]


# ---------------------------------------------------------------- summarize, distinct, count


def test_getschema(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "Events | project n, name, ok | getschema")
    assert columns == [
        ("ColumnName", "string"),
        ("ColumnOrdinal", "int"),
        ("DataType", "string"),
        ("ColumnType", "string"),
    ]
    assert result == [
        ("n", 0, "System.Int64", "long"),
        ("name", 1, "System.String", "string"),
        ("ok", 2, "System.SByte", "bool"),  # Kusto reports bool as SByte
    ]


def test_count_operator(db: duckdb.DuckDBPyConnection) -> None:
    assert run(db, "Events | count") == ([("Count", "long")], [(4,)])
    assert rows(db, "Events | where n > 1 | count") == [(2,)]


def test_summarize_default_names_and_types(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | summarize count(), dcount(name), sum(n), sum(i), sum(x), sum(amount), min(ts),"
        " max(x), avg(n), countif(n > 1), make_set(ok), make_list(i, 100)",
    )
    assert columns == [
        ("count_", "long"),
        ("dcount_name", "long"),
        ("sum_n", "long"),
        ("sum_i", "long"),
        ("sum_x", "real"),
        ("sum_amount", "decimal"),
        ("min_ts", "datetime"),
        ("max_x", "real"),
        ("avg_n", "real"),
        ("countif_", "long"),
        ("set_ok", "dynamic"),
        ("list_i", "dynamic"),
    ]
    (row,) = result
    assert row[:5] == (4, 4, 2, 60, 3.5)
    assert row[5] == Decimal("3.75")
    assert row[6:10] == (datetime(2024, 1, 1, 10, 15), 2.5, 0.5, 2)
    assert sorted(json.loads(row[10])) == [False, True]
    assert sorted(json.loads(row[11])) == [10, 20, 30]


def test_summarize_by_columns_and_bins(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db, "Events | where isnotnull(ts) | summarize total = sum(n), count() by ok, bin(ts, 1h)"
    )
    assert columns == [("ok", "bool"), ("ts", "datetime"), ("total", "long"), ("count_", "long")]
    assert sorted(result) == [
        (False, datetime(2024, 1, 1, 10), 2, 1),
        (True, datetime(2024, 1, 1, 10), 1, 1),
        (True, datetime(2024, 1, 1, 11), 3, 1),
    ]


def test_summarize_by_expression_without_name(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "Events | summarize c = count() by n % 2 == 0")
    assert columns == [("Column1", "bool"), ("c", "long")]
    assert sorted(result) == [(False, 2), (True, 2)]


def test_summarize_by_only_and_expressions_over_aggregates(db: duckdb.DuckDBPyConnection) -> None:
    assert sorted(rows(db, "Events | summarize by ok"), key=str) == [(False,), (None,), (True,)]
    assert rows(db, "Events | summarize spread = max(n) - min(n)") == [(7,)]


def test_summarize_if_variants_and_statistics(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | summarize sumif(n, ok), dcountif(name, n > 0, 2), take_any(n > 100), stdev(n)",
    )
    assert [name for name, _ in columns] == ["sumif_n", "dcountif_name", "any_", "stdev_n"]
    assert result[0][:3] == (4, 3, False)
    assert result[0][3] == pytest.approx(3.109126351029605)


def test_summarize_remaining_aggregations(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | summarize any(ok), variance(n), avgif(x, ok), minif(n, ok), maxif(n, ok),"
        " make_set_if(name, n > 1), make_list_if(i, isnotnull(i))",
    )
    assert [kind for _, kind in columns] == [
        "bool", "real", "real", "long", "long", "dynamic", "dynamic"
    ]  # fmt: skip
    (row,) = result
    assert row[1] == pytest.approx(9.666666666666666)
    assert row[2:5] == (1.5, 1, 3)
    assert sorted(json.loads(row[5])) == ["Gamma-ray", "beta"]
    assert sorted(json.loads(row[6])) == [10, 20, 30]


def test_summarize_percentile(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "Events | summarize percentile(n, 50), p90 = percentile(x, 90)")
    assert columns == [("percentile_n_50", "long"), ("p90", "real")]
    assert result == [(1, 2.5)]


def test_summarize_arg_max_and_arg_min(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "Events | where isnotnull(ok) | summarize arg_max(n, *) by ok")
    assert [name for name, _ in columns] == [
        "ok", "n", "name", "i", "x", "ts", "dur", "d", "g", "amount"
    ]  # fmt: skip
    assert sorted((row[0], row[1], row[2], row[4]) for row in result) == [
        (False, 2, "beta", 2.5),
        (True, 3, "Gamma-ray", None),  # the winning row's null, not another row's value
    ]
    columns, result = run(db, "Events | summarize arg_min(n, name, strlen(name)), count()")
    assert columns == [("n", "long"), ("name", "string"), ("Column1", "long"), ("count_", "long")]
    assert result == [(-4, "", 0, 4)]
    with pytest.raises(KqlError, match=r"arg_max\(\) must be a summarize aggregation of its own"):
        compile_query("Events | extend m = arg_max(n, name)", CATALOG)


def test_summarize_of_empty_input(db: duckdb.DuckDBPyConnection) -> None:
    # Kusto: one row without group-by, no rows with it.
    assert rows(db, "Empty | summarize count(), make_set(v)") == [(0, "[]")]
    assert rows(db, "Empty | summarize count() by v") == []


def test_summarize_needs_aggregations() -> None:
    with pytest.raises(KqlError, match=r"expected an aggregation function .* at position 19"):
        compile_query("Events | summarize n by name", CATALOG)
    with pytest.raises(KqlError, match=r"aggregate function 'sum' is only allowed in summarize"):
        compile_query("Events | extend s = sum(n)", CATALOG)


def test_distinct(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(db, "Events | distinct ok")
    assert columns == [("ok", "bool")]
    assert len(result) == 3
    assert sorted(rows(db, "Events | where n > 0 | distinct ok, even = n % 2 == 0")) == [
        (False, True),
        (True, False),
    ]
    assert len(rows(db, "Events | project ok | distinct *")) == 3


# ---------------------------------------------------------------- expressions over table rows


def test_dynamic_values_in_arithmetic_and_computed_keys(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | where n == 2 | extend key = 'k' | project twice = d.k * 2, by_key = d[key]",
    )
    assert columns == [("twice", "real"), ("by_key", "dynamic")]
    assert result == [(10.0, "5")]
    quoted = 'print d = dynamic({"a \\"b": 1}) | extend k = \'a "b\' | project v = d[k]'
    assert rows(db, quoted) == [("1",)]


def test_comments_and_whitespace_are_ignored(db: duckdb.DuckDBPyConnection) -> None:
    kql = "// all events\nEvents\n| where n == 2 // only beta\n| project name\n"
    assert rows(db, kql) == [("beta",)]


# ---------------------------------------------------------------- composition

# Stages that keep the columns name and n, so that any two of them chain.
STAGES = [
    "where n > -10",
    "where name has 'a' or n == 2",
    "extend m = n * 2, t = ingestion_time()",
    "extend name = toupper(name)",
    "project name, n, twice = n * 2",
    "project-away x*",
    "project-keep name, n",
    "project-reorder n",
    "take 3",
    "top 3 by n",
    "sort by name asc",
    "summarize n = sum(n) by name",
    "distinct name, n",
]


@pytest.mark.parametrize("second", STAGES)
@pytest.mark.parametrize("first", STAGES)
def test_any_two_stages_compose(db: duckdb.DuckDBPyConnection, first: str, second: str) -> None:
    columns, result = run(db, f"Events | {first} | {second}")
    assert {"name", "n"} <= {name for name, _ in columns}
    assert len(result) <= len(ROWS)


# ---------------------------------------------------------------- storage metadata


def test_ingestion_time_extent_id_and_extent_tags(db: duckdb.DuckDBPyConnection) -> None:
    columns, result = run(
        db,
        "Events | where n > 0 | sort by n asc"
        " | project name, t = ingestion_time(), e = extent_id(), tags = extent_tags()",
    )
    assert columns == [("name", "string"), ("t", "datetime"), ("e", "guid"), ("tags", "dynamic")]
    assert result == [
        ("Alpha one", datetime(2024, 2, 1), UUID(EXTENT_1), '["ingest-by:b1","drop-by:b1"]'),
        ("beta", datetime(2024, 2, 1), UUID(EXTENT_1), '["ingest-by:b1","drop-by:b1"]'),
        ("Gamma-ray", datetime(2024, 2, 2), UUID(EXTENT_2), "[]"),
    ]


def test_rows_by_extent_tag(db: duckdb.DuckDBPyConnection) -> None:
    kql = (
        "Events | extend tags = tostring(extent_tags())"
        " | where tags has 'ingest-by:b1' | summarize count() by tags"
    )
    assert rows(db, kql) == [('["ingest-by:b1","drop-by:b1"]', 2)]
    assert rows(db, "Events | where extent_tags() has_any ('ingest-by:b1') | count") == [(2,)]
    assert rows(db, "Events | summarize max(ingestion_time())") == [(datetime(2024, 2, 2),)]


def test_hidden_columns_are_gone_after_summarize(db: duckdb.DuckDBPyConnection) -> None:
    assert rows(
        db, "Events | summarize c = count() by ok | extend t = ingestion_time() | project t"
    )[0] == (None,)


# ---------------------------------------------------------------- let


def test_let_scalar_tabular_and_arrays(db: duckdb.DuckDBPyConnection) -> None:
    kql = (
        "let wanted = dynamic(['beta', 'Gamma-ray']);\n"
        "let minimum = 1;\n"
        "let Positive = Events | where n >= minimum;\n"
        "Positive | where name in (wanted) | project name"
    )
    assert sorted(rows(db, kql)) == [("Gamma-ray",), ("beta",)]
    assert len(rows(db, "let E = Events; E | take 1")) == 1
    assert rows(db, "let E = ['Events'] | where n > 2; E | project name") == [("Gamma-ray",)]
    # A let may shadow the table it reads; self-references never recurse.
    assert rows(db, "let Events = Events | where n > 2; Events | project name") == [("Gamma-ray",)]
    with pytest.raises(KqlError, match=r"unknown column or name 'x'"):
        compile_query("let x = x + 1; print x", CATALOG)
