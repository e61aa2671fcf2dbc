"""Data and Kusto helpers shared by the sink's end-to-end tests."""

from __future__ import annotations

import hashlib
import json

from azure.kusto.data import KustoClient

EVENT_COLUMNS = "(id:long, kind:string, amount:real, at:datetime, payload:dynamic)"
EVENT_JSON_MAPPING = json.dumps(
    [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "kind", "Properties": {"Path": "$.kind"}},
        {"column": "amount", "Properties": {"Path": "$.amount"}},
        {"column": "at", "Properties": {"Path": "$.at"}},
        {"column": "payload", "Properties": {"Path": "$.payload"}},
    ]
)


def create_event_table(kusto: KustoClient, db: str, table: str) -> None:
    kusto.execute_mgmt(db, f".create table {table} {EVENT_COLUMNS}")
    kusto.execute_mgmt(
        db, f".create table {table} ingestion json mapping 'events_json' '{EVENT_JSON_MAPPING}'"
    )


def events_mapping(topic: str, db: str, table: str = "Events") -> dict[str, object]:
    """The settings mapping of ``topic`` into a table made by :func:`create_event_table`."""
    return {
        "topic": topic,
        "db": db,
        "table": table,
        "format": "multijson",
        "mapping": "events_json",
    }


def event(i: int) -> bytes:
    return json.dumps(
        {
            "id": i,
            "kind": ("click", "view", "buy")[i % 3],
            "amount": round(i * 0.25, 2),
            "at": f"2026-11-28T00:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            "payload": {"user": f"u{i % 97}", "tags": ["a", "b"][: i % 3]},
        }
    ).encode()


def id_checksum(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()
