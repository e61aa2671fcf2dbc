"""Helpers for tests that drive the emulator through the SDKs: polling, row counts, statuses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.kusto.data import KustoClient
from azure.kusto.ingest.status import KustoIngestStatusQueues

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.2) -> T:
    """Poll until `probe` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def row_count(client: KustoClient, database: str, table: str) -> int:
    """Rows of a table, summed from `.show table T extents` (needs no KQL)."""
    extents = client.execute_mgmt(database, f".show table {table} extents").primary_results[0]
    return sum(row["RowCount"] for row in extents)


def status_messages(
    queues: KustoIngestStatusQueues, source_id: str, timeout: float = 20.0
) -> tuple[list[Any], list[Any]]:
    """Pop status messages until one names `source_id`; returns (successes, failures) for it.

    Popping deletes the other messages it meets too, as `KustoIngestStatusQueues` does:
    use it only where no other client waits on the same status queues.
    """
    successes: list[Any] = []
    failures: list[Any] = []

    def probe() -> bool:
        successes.extend(m for m in queues.success.pop(16) if m.IngestionSourceId == source_id)
        failures.extend(m for m in queues.failure.pop(16) if m.IngestionSourceId == source_id)
        return bool(successes or failures)

    wait_for(probe, timeout)
    return successes, failures
