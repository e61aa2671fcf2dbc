"""Management command parsing and effects on the store (no servers needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.faults import FaultRegistry, FaultSpec
from devstack.kusto_emulator.ingestion import IngestionRequest, ingest_file
from devstack.kusto_emulator.mgmt import MgmtContext, execute_mgmt
from devstack.kusto_emulator.store import AlreadyTaggedError, KustoStore

Run = Callable[[str], list[dict[str, object]]]


@pytest.fixture
def store(tmp_path: Path) -> KustoStore:
    store = KustoStore(tmp_path / "kusto")
    store.create_database("db")
    return store


@pytest.fixture
def run(store: KustoStore) -> Run:
    def run(command: str) -> list[dict[str, object]]:
        table = execute_mgmt(MgmtContext(store, None, "db"), command)
        names = [name for name, _ in table.columns]
        return [dict(zip(names, row, strict=True)) for row in table.rows]

    return run


def ingest(store: KustoStore, tmp_path: Path, table: str, tags: list[str], rows: int) -> None:
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("".join(f"{n}\n" for n in range(rows)))
    ingest_file(store, IngestionRequest("db", table, "csv", tags=tags), path)


def test_bracketed_names_and_with_clause(run: Run, store: KustoStore) -> None:
    run(".create table ['My Table'] (['a b']:string, n:int) with (folder='x', docstring='y')")

    assert store.columns("db", "My Table") == [("a b", "string"), ("n", "int")]
    assert run(".show table ['My Table'] cslschema")[0]["Schema"] == "['a b']:string,n:int"


def test_type_aliases_are_canonical(run: Run, store: KustoStore) -> None:
    run(".create table T (a:boolean, b:double, c:date, d:time, e:int64, f:uuid)")

    assert [kind for _, kind in store.columns("db", "T")] == [
        "bool",
        "real",
        "datetime",
        "timespan",
        "long",
        "guid",
    ]


def test_unknown_column_type_is_a_syntax_error(run: Run) -> None:
    with pytest.raises(KustoRequestError) as raised:
        run(".create table T (a:blob)")

    assert raised.value.code == "BadRequest_SyntaxError"


def test_mapping_in_a_multiline_fence(run: Run, store: KustoStore) -> None:
    run(".create table T (n:long)")

    run(
        ".create-or-alter table T ingestion json mapping 'M'\n"
        '```\n[{"column": "n", "Properties": {"Path": "$.n"}}]\n```'
    )

    assert store.mapping("db", "T", "M") == (
        "Json",
        '\n[{"column": "n", "Properties": {"Path": "$.n"}}]\n',
    )


def test_extent_filters_and_drops(run: Run, store: KustoStore, tmp_path: Path) -> None:
    run(".create table T (n:long)")
    ingest(store, tmp_path, "T", ["ingest-by:orders/0/0-9", "drop-by:orders/0/0-9"], 10)
    ingest(store, tmp_path, "T", ["ingest-by:orders/1/0-4", "drop-by:orders/1/0-4"], 5)
    ingest(store, tmp_path, "T", ["ingest-by:it's"], 2)

    by_prefix = run(".show table ['T'] extents where tags contains 'ingest-by:orders/0/'")
    escaped = run(r".show table T extents where tags has 'ingest-by:it\'s'")
    both = run(
        ".show table T extents where tags contains 'orders' and tags !has 'drop-by:orders/0/0-9'"
    )
    by_term = run(".show table T extents where tags has 'ORDERS'")
    case_sensitive = run(".show table T extents where tags has_cs 'ORDERS'")
    run(".drop extents <| .show table T extents where tags has 'drop-by:orders/0/0-9'")

    assert [row["RowCount"] for row in by_prefix] == [10]
    assert [row["RowCount"] for row in escaped] == [2]
    assert [row["RowCount"] for row in both] == [5]
    assert sorted(row["RowCount"] for row in by_term) == [5, 10]
    assert case_sensitive == []
    assert sorted(row["RowCount"] for row in run(".show database db extents")) == [2, 5]


def test_drop_extent_tags_keeps_rows(run: Run, store: KustoStore, tmp_path: Path) -> None:
    run(".create table T (n:long)")
    ingest(store, tmp_path, "T", ["drop-by:x", "keep"], 3)

    run(".drop extent tags from table T ('drop-by:x')")

    [row] = run(".show table T extents")
    assert (row["RowCount"], row["Tags"]) == (3, "keep")


def test_streaming_policy_of_table_and_database(run: Run, store: KustoStore) -> None:
    run(".create table A (n:long)")
    run(".create table B (n:long)")

    run(".alter database db policy streamingingestion enable")
    run(".alter table B policy streamingingestion '{\"IsEnabled\": false}'")

    assert store.streaming_enabled("db", "A") is True
    assert store.streaming_enabled("db", "B") is False


def test_create_database_twice_needs_ifnotexists(run: Run) -> None:
    run(".create database other ifnotexists")
    run(".create database other ifnotexists")

    with pytest.raises(KustoRequestError):
        run(".create database other")
    assert [row["DatabaseName"] for row in run(".show databases")] == ["db", "other"]


def test_drop_database(run: Run) -> None:
    run(".create database other ifnotexists")

    run(".drop database other")
    run(".drop database other ifexists")

    assert [row["DatabaseName"] for row in run(".show databases")] == ["db"]
    with pytest.raises(KustoRequestError):
        run(".drop database other")


def test_unknown_command_names_itself(run: Run) -> None:
    with pytest.raises(KustoRequestError, match="set-or-append"):
        run(".set-or-append T <| print 1")


def test_ingest_inline_with_properties(run: Run, store: KustoStore) -> None:
    run(".create table T (n:long, s:string)")

    result = run(
        ".ingest inline into table T with (format='psv', tags='[\"ingest-by:x\"]') <| 1|a\n2|b"
    )
    repeat = run(
        ".ingest inline into table T with (format='psv', ingestIfNotExists='[\"x\"]') <| 3|c"
    )

    assert [row["HasErrors"] for row in result] == [False]
    assert repeat == []
    [extent] = store.extents("db", "T")
    assert (extent.row_count, extent.tags) == (2, ["ingest-by:x"])


def test_ingest_inline_bad_data_is_refused(run: Run) -> None:
    run(".create table T (n:long, s:string)")

    with pytest.raises(KustoRequestError) as raised:
        run(".ingest inline into table T <| 1,a\n2,b,c")

    assert raised.value.code == "Stream_WrongNumberOfFields"


def test_ingest_command_honours_refused_writes(store: KustoStore) -> None:
    faults = FaultRegistry()
    faults.add(FaultSpec(kind="refuse_writes", database="db", table="T"))
    context = MgmtContext(store, None, "db", faults)
    execute_mgmt(context, ".create table T (n:long)")

    with pytest.raises(KustoRequestError) as raised:
        execute_mgmt(context, ".ingest inline into table T <| 1")

    assert raised.value.permanent is True


def test_ingestion_failures_filtered_by_time_and_table(run: Run, store: KustoStore) -> None:
    run(".create table A (n:long)")
    run(".create table B (n:long)")
    store.record_failure("db", "A", "op-old", "blob-a-old", "bad", True, "E")
    [old] = run(".show ingestion failures")
    later = old["FailedOn"] + timedelta(milliseconds=5)
    time.sleep(0.02)
    store.record_failure("db", "A", "op-a", "blob-a", "bad", True, "E")
    store.record_failure("db", "B", "op-b", "blob-b", "bad", False, "E")

    since = run(f".show ingestion failures | where FailedOn >= datetime({later.isoformat()}Z)")
    of_a = run(
        f".show ingestion failures | where FailedOn > datetime({later.isoformat()}) "
        "and Table == 'A'"
    )

    assert [row["IngestionSourcePath"] for row in since] == ["blob-a", "blob-b"]
    assert [row["IngestionSourcePath"] for row in of_a] == ["blob-a"]
    with pytest.raises(KustoRequestError, match="Unsupported ingestion failures filter"):
        run(".show ingestion failures | where Details has 'bad'")


def test_extents_answer_while_an_ingestion_is_writing(
    run: Run, store: KustoStore, tmp_path: Path
) -> None:
    run(".create table T (n:long)")
    ingest(store, tmp_path, "T", ["ingest-by:done"], 2)
    writing, release = threading.Event(), threading.Event()

    def slow_ingestion() -> None:
        with store.transaction() as con:
            con.execute("INSERT INTO db.T VALUES (1, 'x', now())")
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=slow_ingestion)
    writer.start()
    try:
        assert writing.wait(10)
        began = time.monotonic()
        extents = run(".show table T extents where tags contains 'ingest-by:'")
        answered_in = time.monotonic() - began
    finally:
        release.set()
        writer.join()

    assert [row["Tags"] for row in extents] == ["ingest-by:done"]
    assert answered_in < 5


def test_ingest_if_not_exists_is_checked_with_the_write(store: KustoStore, tmp_path: Path) -> None:
    store.create_table("db", "T", [("n", "long")], merge=False)
    select = "SELECT 1::BIGINT"
    store.append_extent("db", "T", select, ["ingest-by:b1"], if_not_exists=["b1"])

    with pytest.raises(AlreadyTaggedError):
        store.append_extent("db", "T", select, ["ingest-by:b1"], if_not_exists=["b1"])

    assert [extent.tags for extent in store.extents("db", "T")] == [["ingest-by:b1"]]
