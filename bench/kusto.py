"""The benchmark's Kusto side: one fresh table per measurement, and the questions asked of it."""

from __future__ import annotations

import json
import threading
import time

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

from bench.data import COLUMNS, JSON_PATHS

MAPPING = "bench_mapping"


def client(url: str) -> KustoClient:
    return KustoClient(KustoConnectionStringBuilder.with_no_authentication(url))


def create_table(kusto: KustoClient, db: str, table: str, format: str) -> str | None:
    """A table for ``format`` records; returns the name of its ingestion mapping, if any."""
    kusto.execute_mgmt(None, f".create database {db} ifnotexists")
    columns = ", ".join(f"{name}:{kind}" for name, kind in COLUMNS)
    kusto.execute_mgmt(db, f".create table {table} ({columns})")
    # Every table takes streaming ingestion too: the streaming cases need it, others ignore it.
    kusto.execute_mgmt(db, f".alter table {table} policy streamingingestion enable")
    if format == "csv":
        return None  # columns by position
    kind = "json" if format == "json" else "avro"
    mapping = json.dumps(
        [{"column": name, "Properties": {"Path": JSON_PATHS[name]}} for name, _ in COLUMNS]
    )
    kusto.execute_mgmt(
        db, f".create table {table} ingestion {kind} mapping '{MAPPING}' '{mapping}'"
    )
    return MAPPING


def count(kusto: KustoClient, db: str, table: str) -> int:
    return int(kusto.execute_query(db, f"{table} | count").primary_results[0][0]["Count"])


class FirstRowWatch:
    """Asks Kusto every ``poll_s`` whether ``table`` has a row yet, from start until stopped.

    ``seconds`` is then the time from :meth:`start` to the first answer above zero (to within
    ``poll_s``), or None when no row showed up.
    """

    def __init__(self, kusto: KustoClient, db: str, table: str, poll_s: float = 0.5) -> None:
        self._kusto, self._db, self._table, self._poll_s = kusto, db, table, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="first-row", daemon=True)
        self._began = 0.0
        self.seconds: float | None = None

    def start(self) -> FirstRowWatch:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return self.seconds

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                if count(self._kusto, self._db, self._table) > 0:
                    self.seconds = time.monotonic() - self._began
                    return
            except Exception:  # noqa: BLE001 - a busy emulator may time out: ask again
                pass
            self._stop.wait(self._poll_s)
