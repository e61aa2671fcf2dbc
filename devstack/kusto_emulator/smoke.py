"""Smoke check of a Kusto endpoint with nothing but the public Azure SDKs and `KUSTO_URL`.

After `kusto-sink devstack up`::

    KUSTO_URL=http://127.0.0.1:8080 python -m devstack.kusto_emulator.smoke

creates a database, a table and its JSON mapping, ingests rows queued and streaming, and
reads them back with KQL. Exits non-zero if any step fails.
"""

from __future__ import annotations

import io
import os
import sys
import time
import uuid

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import (
    IngestionProperties,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
    StreamDescriptor,
)

MAPPING = (
    '[{"column":"user","Properties":{"Path":"$.u"}},{"column":"page","Properties":{"Path":"$.p"}}]'
)
EXPECTED = [["ann", "/"], ["bob", "/a"], ["cid", "/b"]]


def run(kusto_url: str, database: str, timeout: float = 60.0) -> list[list[object]]:
    """Create, ingest (2 rows queued, 1 streamed), and return `Clicks` ordered by user."""
    kcsb = KustoConnectionStringBuilder.with_no_authentication(kusto_url)
    with KustoClient(kcsb) as client:
        client.execute_mgmt("NetDefaultDB", f".create database {database} ifnotexists")
        client.execute_mgmt(database, ".create table Clicks (user:string, page:string)")
        client.execute_mgmt(
            database, f".create table Clicks ingestion json mapping 'ClicksJson' '{MAPPING}'"
        )
        client.execute_mgmt(database, ".alter table Clicks policy streamingingestion enable")
        properties = IngestionProperties(
            database,
            "Clicks",
            data_format=DataFormat.JSON,
            ingestion_mapping_reference="ClicksJson",
        )
        queued = QueuedIngestClient(kcsb)
        queued.ingest_from_stream(
            StreamDescriptor(io.BytesIO(b'{"u": "ann", "p": "/"}\n{"u": "bob", "p": "/a"}')),
            properties,
        )
        queued.close()
        streaming = ManagedStreamingIngestClient(kcsb, kcsb)
        streaming.ingest_from_stream(
            StreamDescriptor(io.BytesIO(b'{"u": "cid", "p": "/b"}')), properties
        )
        streaming.close()
        deadline = time.monotonic() + timeout
        while True:
            response = client.execute_query(
                database, "Clicks | order by user asc | project user, page"
            )
            rows = [row.to_list() for row in response.primary_results[0]]
            if len(rows) >= len(EXPECTED) or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)


def main() -> None:
    kusto_url = os.environ.get("KUSTO_URL", "http://127.0.0.1:8080")
    database = f"smoke_{uuid.uuid4().hex[:8]}"
    rows = run(kusto_url, database)
    if rows != EXPECTED:
        sys.exit(f"smoke check against {kusto_url} failed: database {database} holds {rows}")
    print(f"smoke check against {kusto_url} passed (database {database})")  # noqa: T201


if __name__ == "__main__":
    main()
