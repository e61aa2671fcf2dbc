"""KQL queries: compile with the KQL compiler, run on DuckDB, shape as a result table."""

from __future__ import annotations

import duckdb

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.responses import ResultTable
from devstack.kusto_emulator.store import KustoStore


class StoreCatalog:
    """The compiler's view of one database: table columns with their Kusto types."""

    def __init__(self, store: KustoStore, database: str) -> None:
        self._store = store
        self.database = database

    def columns(self, table: str) -> list[tuple[str, str]]:
        return self._store.columns(self.database, table)


def run_query(store: KustoStore, database: str, text: str) -> ResultTable:
    # Imported here: the compiler is a separate module that may fail on its own.
    from devstack.kusto_emulator.kql import KqlError, compile_query

    store.require_database(database)
    try:
        compiled = compile_query(text, StoreCatalog(store, database))
    except KqlError as error:
        raise KustoRequestError.syntax(f"Syntax error: {error}") from None
    except KeyError as error:
        raise KustoRequestError.entity_not_found("Table", f"{database}.{error.args[0]}") from None
    try:
        with store.connection() as con:
            rows = con.execute(compiled.sql).fetchall()
    except duckdb.Error as error:
        raise KustoRequestError.bad_request(
            f"Query execution failed: {str(error).splitlines()[0]}"
        ) from None
    return ResultTable(list(compiled.columns), rows, name="PrimaryResult")
