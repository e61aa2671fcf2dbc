"""The emulator's storage: one DuckDB file, one schema per Kusto database.

Layout (the KQL compiler reads it, so it is a contract):

- each Kusto table is a DuckDB table of the same name with the user columns in order,
  plus `__extent_id VARCHAR` and `__ingestion_time TIMESTAMP` (UTC);
- `"<db>"."__tables"(table_name, columns JSON)` keeps the Kusto column types;
- `"<db>"."__extents"(extent_id, table_name, tags VARCHAR[], row_count, created)`;
- `"<db>"."__mappings"(table_name, kind, name, mapping_json)`;
- `"<db>"."__policies"(entity, policy, enabled)`: streaming ingestion, per table or database
  (entity '' for the database);
- `"<db>"."__failures"(...)`: failed queued ingestions, for `.show ingestion failures`.

Writes go through cursors of one connection, one at a time under one lock (the queue
worker, streaming ingestion and management commands share it). Reads (queries, extent
and failure listings, table metadata) take a cursor of their own outside the lock: DuckDB
gives each transaction the last committed state, so they answer while a large ingestion
is writing, as Kusto answers them from its metadata.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.kusto_types import canonical_type, duckdb_type

_SYSTEM_SCHEMAS = {"main", "information_schema", "pg_catalog", "temp"}


def quote(identifier: str) -> str:
    """Quote a DuckDB identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """Quote a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class EmptyExtentError(Exception):
    """The data yielded no rows: Kusto creates no empty extents."""


class AlreadyTaggedError(Exception):
    """An extent of the table already carries one of the `ingest-by` tags asked about."""


@dataclass(frozen=True)
class Extent:
    extent_id: str
    table_name: str
    tags: list[str]
    row_count: int
    created: datetime


class KustoStore:
    """Databases, tables, mappings, policies and extents in one DuckDB file."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._connection = duckdb.connect(str(data_dir / "kusto.duckdb"))
        self._connection.execute("SET GLOBAL TimeZone = 'UTC'")
        # Fewer checkpoints while ingesting many small extents (each goes through the WAL);
        # bounded, so that replaying the WAL after a kill stays quick.
        self._connection.execute("SET GLOBAL checkpoint_threshold = '256MB'")
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the shared database, held exclusively for the duration of the block.

        A fresh cursor per block: DuckDB refuses new work on a connection whose last
        result was not consumed.
        """
        with self._lock:
            cursor = self._connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    @contextmanager
    def snapshot(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for reading the last committed state, without waiting for writers."""
        cursor = self._connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connection() as cursor:
            cursor.begin()
            try:
                yield cursor
            except BaseException:
                cursor.rollback()
                raise
            cursor.commit()

    # Databases

    def create_database(self, database: str) -> None:
        schema = quote(database)
        with self.transaction() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.__tables"
                "(table_name VARCHAR PRIMARY KEY, columns JSON)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.__extents(extent_id VARCHAR, "
                "table_name VARCHAR, tags VARCHAR[], row_count BIGINT, created TIMESTAMP)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.__mappings"
                "(table_name VARCHAR, kind VARCHAR, name VARCHAR, mapping_json VARCHAR)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.__policies"
                "(entity VARCHAR, policy VARCHAR, enabled BOOLEAN)"
            )
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.__failures(operation_id VARCHAR, "
                "table_name VARCHAR, failed_on TIMESTAMP, source_path VARCHAR, details VARCHAR, "
                "failure_kind VARCHAR, error_code VARCHAR, should_retry BOOLEAN)"
            )

    def databases(self) -> list[str]:
        with self.snapshot() as con:
            rows = con.execute(
                "SELECT DISTINCT schema_name FROM information_schema.schemata "
                "WHERE catalog_name = current_database()"
            ).fetchall()
        return sorted(name for (name,) in rows if name not in _SYSTEM_SCHEMAS)

    def has_database(self, database: str) -> bool:
        if database in _SYSTEM_SCHEMAS:
            return False
        with self.snapshot() as con:
            row = con.execute(
                "SELECT 1 FROM information_schema.schemata "
                "WHERE catalog_name = current_database() AND schema_name = ?",
                [database],
            ).fetchone()
        return row is not None

    def require_database(self, database: str) -> None:
        if not self.has_database(database):
            raise KustoRequestError.entity_not_found("Database", database)

    def drop_database(self, database: str) -> None:
        self.require_database(database)
        with self.connection() as con:
            con.execute(f"DROP SCHEMA {quote(database)} CASCADE")

    # Tables

    def tables(self, database: str) -> list[tuple[str, list[tuple[str, str]]]]:
        self.require_database(database)
        with self.snapshot() as con:
            rows = con.execute(
                f"SELECT table_name, columns FROM {quote(database)}.__tables ORDER BY table_name"
            ).fetchall()
        return [
            (name, [tuple(column) for column in orjson.loads(columns)]) for name, columns in rows
        ]

    def columns(self, database: str, table: str) -> list[tuple[str, str]]:
        """The table's (name, Kusto type) columns; raises KeyError if there is no such table."""
        if not self.has_database(database):
            raise KeyError(table)
        with self.snapshot() as con:
            row = con.execute(
                f"SELECT columns FROM {quote(database)}.__tables WHERE table_name = ?", [table]
            ).fetchone()
        if row is None:
            raise KeyError(table)
        return [(name, kind) for name, kind in orjson.loads(row[0])]

    def require_table(self, database: str, table: str) -> list[tuple[str, str]]:
        self.require_database(database)
        try:
            return self.columns(database, table)
        except KeyError:
            raise KustoRequestError.entity_not_found("Table", f"{database}.{table}") from None

    def create_table(
        self, database: str, table: str, columns: list[tuple[str, str]], merge: bool
    ) -> list[tuple[str, str]]:
        """Create the table, or with `merge` add the columns it lacks. Returns its columns."""
        self.require_database(database)
        columns = [(name, canonical_type(kind)) for name, kind in columns]
        target = f"{quote(database)}.{quote(table)}"
        with self.transaction() as con:
            row = con.execute(
                f"SELECT columns FROM {quote(database)}.__tables WHERE table_name = ?", [table]
            ).fetchone()
            if row is None:
                definition = ", ".join(
                    f"{quote(name)} {duckdb_type(kind)}" for name, kind in columns
                )
                con.execute(
                    f"CREATE TABLE {target}({definition}, "
                    '"__extent_id" VARCHAR, "__ingestion_time" TIMESTAMP)'
                )
                result = columns
            else:
                existing = [(name, kind) for name, kind in orjson.loads(row[0])]
                known = dict(existing)
                for name, kind in columns:
                    if name in known and known[name] != kind:
                        raise KustoRequestError.bad_request(
                            f"Column '{name}' of table '{database}.{table}' is already of "
                            f"type '{known[name]}', cannot change it to '{kind}'"
                        )
                if not merge:
                    return existing
                result = existing + [(name, kind) for name, kind in columns if name not in known]
                for name, kind in columns:
                    if name not in known:
                        con.execute(
                            f"ALTER TABLE {target} ADD COLUMN {quote(name)} {duckdb_type(kind)}"
                        )
                self._reorder_hidden_columns(con, target, result)
            con.execute(
                f"INSERT OR REPLACE INTO {quote(database)}.__tables VALUES (?, ?)",
                [table, orjson.dumps(result).decode()],
            )
        return result

    @staticmethod
    def _reorder_hidden_columns(
        con: duckdb.DuckDBPyConnection, target: str, columns: list[tuple[str, str]]
    ) -> None:
        """Keep user columns first: ALTER TABLE appends after the hidden ones."""
        order = ", ".join(quote(name) for name, _ in columns)
        con.execute(
            f"CREATE OR REPLACE TABLE {target} AS SELECT {order}, "
            f'"__extent_id", "__ingestion_time" FROM {target}'
        )

    def drop_table(self, database: str, table: str, if_exists: bool) -> None:
        self.require_database(database)
        schema = quote(database)
        with self.transaction() as con:
            exists = con.execute(
                f"SELECT 1 FROM {schema}.__tables WHERE table_name = ?", [table]
            ).fetchone()
            if not exists:
                if if_exists:
                    return
                raise KustoRequestError.entity_not_found("Table", f"{database}.{table}")
            con.execute(f"DROP TABLE {schema}.{quote(table)}")
            for metadata in ("__tables", "__extents", "__mappings", "__failures"):
                con.execute(f"DELETE FROM {schema}.{metadata} WHERE table_name = ?", [table])
            con.execute(f"DELETE FROM {schema}.__policies WHERE entity = ?", [table])

    # Mappings

    def create_mapping(
        self, database: str, table: str, kind: str, name: str, mapping_json: str
    ) -> None:
        self.require_table(database, table)
        schema = quote(database)
        with self.transaction() as con:
            con.execute(
                f"DELETE FROM {schema}.__mappings WHERE table_name = ? AND kind = ? AND name = ?",
                [table, kind, name],
            )
            con.execute(
                f"INSERT INTO {schema}.__mappings VALUES (?, ?, ?, ?)",
                [table, kind, name, mapping_json],
            )

    def mappings(self, database: str, table: str) -> list[tuple[str, str, str]]:
        """(name, kind, mapping JSON) of the table's ingestion mappings."""
        self.require_table(database, table)
        with self.snapshot() as con:
            return con.execute(
                f"SELECT name, kind, mapping_json FROM {quote(database)}.__mappings "
                "WHERE table_name = ? ORDER BY name",
                [table],
            ).fetchall()

    def mapping(self, database: str, table: str, name: str) -> tuple[str, str] | None:
        """(kind, mapping JSON) of the named mapping, or None."""
        for mapping_name, kind, mapping_json in self.mappings(database, table):
            if mapping_name == name:
                return kind, mapping_json
        return None

    def drop_mapping(self, database: str, table: str, kind: str, name: str) -> None:
        self.require_table(database, table)
        with self.connection() as con:
            con.execute(
                f"DELETE FROM {quote(database)}.__mappings "
                "WHERE table_name = ? AND lower(kind) = lower(?) AND name = ?",
                [table, kind, name],
            )

    # Policies

    def set_streaming_policy(self, database: str, table: str, enabled: bool) -> None:
        """Enable or disable streaming ingestion; table '' means the whole database."""
        if table:
            self.require_table(database, table)
        else:
            self.require_database(database)
        schema = quote(database)
        with self.transaction() as con:
            con.execute(
                f"DELETE FROM {schema}.__policies WHERE entity = ? AND policy = 'streaming'",
                [table],
            )
            con.execute(
                f"INSERT INTO {schema}.__policies VALUES (?, 'streaming', ?)", [table, enabled]
            )

    def streaming_enabled(self, database: str, table: str) -> bool:
        """The table's own streaming policy wins; otherwise the database's."""
        with self.snapshot() as con:
            rows = dict(
                con.execute(
                    f"SELECT entity, enabled FROM {quote(database)}.__policies "
                    "WHERE policy = 'streaming' AND entity IN (?, '')",
                    [table],
                ).fetchall()
            )
        return bool(rows.get(table, rows.get("", False)))

    # Ingestion failures

    def record_failure(
        self,
        database: str,
        table: str,
        operation_id: str,
        source_path: str,
        details: str,
        permanent: bool,
        error_code: str,
    ) -> None:
        """Keep a failure for `.show ingestion failures` (if the database exists)."""
        if not self.has_database(database):
            return
        with self.connection() as con:
            con.execute(
                f"INSERT INTO {quote(database)}.__failures VALUES "
                "(?, ?, CAST(now() AS TIMESTAMP), ?, ?, ?, ?, ?)",
                [
                    operation_id,
                    table,
                    source_path,
                    details,
                    "Permanent" if permanent else "Transient",
                    error_code,
                    not permanent,
                ],
            )

    def failures(
        self, database: str, *, since: datetime | None = None, table: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Failures of the database, optionally only those at or after `since` (UTC) and of
        one table."""
        self.require_database(database)
        where, parameters = ["TRUE"], []
        if since is not None:
            where.append("failed_on >= ?")
            parameters.append(since)
        if table is not None:
            where.append("table_name = ?")
            parameters.append(table)
        with self.snapshot() as con:
            return con.execute(
                "SELECT operation_id, table_name, failed_on, source_path, details, "
                f"failure_kind, error_code, should_retry FROM {quote(database)}.__failures "
                f"WHERE {' AND '.join(where)} ORDER BY failed_on",
                parameters,
            ).fetchall()

    # Extents

    def append_extent(
        self,
        database: str,
        table: str,
        select_sql: str,
        tags: list[str],
        arrow_tables: dict[str, pa.Table] | None = None,
        if_not_exists: Sequence[str] = (),
    ) -> tuple[str, int]:
        """Insert the rows `select_sql` yields (user columns in order) as one new extent.

        `arrow_tables` are registered by name for the duration of the insert. All rows or
        none: the insert and the extent record share one transaction. With `if_not_exists`
        (`ingestIfNotExists`), raises AlreadyTaggedError instead when an extent carries
        `ingest-by:<value>` for one of the values: checked inside the writers' lock, so two
        ingestions of one batch cannot both pass the check.
        Returns (extent id, row count).
        """
        self.require_table(database, table)
        extent_id = str(uuid.uuid4())
        schema = quote(database)
        with self.transaction() as con:
            if if_not_exists and _carries_ingest_by(con, database, table, if_not_exists):
                raise AlreadyTaggedError(f"{database}.{table}: {list(if_not_exists)}")
            for name, arrow_table in (arrow_tables or {}).items():
                con.register(name, arrow_table)
            inserted = con.execute(
                f"INSERT INTO {schema}.{quote(table)} SELECT *, {literal(extent_id)}, "
                f"CAST(now() AS TIMESTAMP) FROM ({select_sql})"
            ).fetchone()
            row_count = int(inserted[0]) if inserted else 0
            if row_count == 0:
                raise EmptyExtentError(f"no rows for {database}.{table}")
            con.execute(
                f"INSERT INTO {schema}.__extents VALUES (?, ?, ?, ?, CAST(now() AS TIMESTAMP))",
                [extent_id, table, tags, row_count],
            )
        return extent_id, int(row_count)

    def extents(self, database: str, table: str | None) -> list[Extent]:
        self.require_database(database)
        if table is not None:
            self.require_table(database, table)
        where = "" if table is None else "WHERE table_name = ?"
        with self.snapshot() as con:
            rows = con.execute(
                f"SELECT extent_id, table_name, tags, row_count, created "
                f"FROM {quote(database)}.__extents {where} ORDER BY created, extent_id",
                [] if table is None else [table],
            ).fetchall()
        return [Extent(*row) for row in rows]

    def has_ingest_by_tag(self, database: str, table: str, values: Sequence[str]) -> bool:
        """Whether an extent of the table carries `ingest-by:<value>` for any of the values."""
        with self.snapshot() as con:
            return _carries_ingest_by(con, database, table, values)

    def drop_tags(self, database: str, table: str, tags: list[str]) -> list[Extent]:
        """Remove the tags from the table's extents; returns the extents changed."""
        changed = [
            Extent(
                e.extent_id,
                e.table_name,
                [t for t in e.tags if t not in tags],
                e.row_count,
                e.created,
            )
            for e in self.extents(database, table)
            if set(e.tags) & set(tags)
        ]
        with self.transaction() as con:
            for extent in changed:
                con.execute(
                    f"UPDATE {quote(database)}.__extents SET tags = ? WHERE extent_id = ?",
                    [extent.tags, extent.extent_id],
                )
        return changed

    def drop_extents(self, database: str, extent_ids: list[str]) -> list[Extent]:
        """Drop the given extents with their rows; returns the extents dropped."""
        self.require_database(database)
        schema = quote(database)
        dropped = [
            extent for extent in self.extents(database, None) if extent.extent_id in extent_ids
        ]
        with self.transaction() as con:
            for extent in dropped:
                con.execute(
                    f"DELETE FROM {schema}.{quote(extent.table_name)} WHERE __extent_id = ?",
                    [extent.extent_id],
                )
                con.execute(
                    f"DELETE FROM {schema}.__extents WHERE extent_id = ?", [extent.extent_id]
                )
        return dropped


def _carries_ingest_by(
    con: duckdb.DuckDBPyConnection, database: str, table: str, values: Sequence[str]
) -> bool:
    row = con.execute(
        f"SELECT 1 FROM {quote(database)}.__extents WHERE table_name = ? "
        "AND len(list_intersect(tags, ?)) > 0 LIMIT 1",
        [table, [f"ingest-by:{value}" for value in values]],
    ).fetchone()
    return row is not None
