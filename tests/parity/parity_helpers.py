"""Helpers of the parity tests: draining a sink, reading Kusto rows and Kafka topics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azure.kusto.data import KustoClient
from confluent_kafka import Consumer

from pipelines.config import SinkSettings, load_settings
from pipelines.deliver import DeliveryReport
from pipelines.runtime import SinkRuntime

REFERENCE = Path(__file__).parent / "reference"

# The variables the reference quickstart's connector JSON names, for a load-only test.
QUICKSTART_ENV = {
    "KAFKA_TOPIC": "quickstart",
    "KUSTO_DATABASE": "db",
    "KUSTO_TABLE": "Events",
    "KUSTO_INGEST_URL": "http://127.0.0.1:8080",
    "KUSTO_ENGINE_URL": "http://127.0.0.1:8080",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
}


def drain(settings: SinkSettings | Path) -> list[DeliveryReport]:
    """Deliver every planned range once; returns the reports."""
    if isinstance(settings, Path):
        settings = load_settings(settings)
    with SinkRuntime(settings) as runtime:
        return [runtime.deliver(rng) for rng in runtime.plan()]


def rows(kusto: KustoClient, db: str, query: str) -> list[dict[str, Any]]:
    return [row.to_dict() for row in kusto.execute_query(db, query).primary_results[0]]


def read_topic(bootstrap_servers: str, topic: str, expected: int) -> list[Any]:
    """The first ``expected`` records of ``topic`` (committed ones only)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"parity-reader-{topic}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    try:
        for _ in range(30):
            found += [m for m in consumer.consume(100, timeout=1) if m.error() is None]
            if len(found) >= expected:
                break
    finally:
        consumer.close()
    return found


NOTE_JSON_MAPPING = json.dumps(
    [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "note", "Properties": {"Path": "$.note"}},
    ]
)


def note_table(kusto: KustoClient, db: str, table: str) -> None:
    """Table ``(id:long, note:string)`` with json mapping ``notes``, for :func:`notes`."""
    kusto.execute_mgmt(db, f".create table {table} (id:long, note:string)")
    kusto.execute_mgmt(
        db, f".create table {table} ingestion json mapping 'notes' '{NOTE_JSON_MAPPING}'"
    )


def notes(first: int, count: int) -> list[tuple[None, bytes, None]]:
    """``count`` JSON records ``{"id", "note"}`` from id ``first``, as (key, value, headers)."""
    return [
        (None, json.dumps({"id": i, "note": f"n{i}"}).encode(), None)
        for i in range(first, first + count)
    ]
