"""Data of the backfill tests: a topic delivered by the live sink, to read again.

Records carry explicit times, one second apart from ``BASE_TIME``, so time windows select
known ids; each is ``{"id": i, "at": ...}`` and lands in tables of ``(id, at)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.kusto.data import KustoClient

from pipelines.config import load_settings
from pipelines.runtime import SinkRuntime

BASE_TIME = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
RECORDS = 600
PARTITIONS = 2
_MAPPING = json.dumps(
    [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "at", "Properties": {"Path": "$.at"}},
    ]
)


def record_time(i: int) -> datetime:
    return BASE_TIME + timedelta(seconds=i)


def create_table(kusto: KustoClient, db: str, table: str) -> None:
    kusto.execute_mgmt(db, f".create table {table} (id:long, at:datetime)")
    kusto.execute_mgmt(db, f".create table {table} ingestion json mapping 'ids' '{_MAPPING}'")


def ids_in(kusto: KustoClient, db: str, table: str) -> list[int]:
    rows = kusto.execute_query(db, f"{table} | project id").primary_results[0]
    return sorted(int(row["id"]) for row in rows)


@dataclass(frozen=True)
class Delivered:
    """A topic of ``RECORDS`` records over ``PARTITIONS`` partitions, all in ``db.Events``."""

    topic: str
    db: str
    settings_path: Path
    write_settings: Callable[..., Path]

    def runtime(self, path: Path | None = None) -> SinkRuntime:
        return SinkRuntime(load_settings(path or self.settings_path))
