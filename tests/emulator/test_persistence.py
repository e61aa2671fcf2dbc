"""The emulator keeps its data across a restart, and picks up queued work it missed."""

from __future__ import annotations

import io

import pytest
from azure.kusto.data import KustoClient
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import IngestionProperties, QueuedIngestClient, StreamDescriptor

from devstack.kusto_emulator.testing import row_count, wait_for
from devstack.stack import StackConfig, down, up

pytestmark = pytest.mark.stack


def test_restart_keeps_tables_mappings_extents_and_tags(
    stack: StackConfig,
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
) -> None:
    kusto_client.execute_mgmt(database, ".create table Kept (n:long)")
    kusto_client.execute_mgmt(
        database,
        ".create table Kept ingestion csv mapping 'KeptCsv' "
        '\'[{"column":"n","Properties":{"Ordinal":"0"}}]\'',
    )
    properties = IngestionProperties(
        database,
        "Kept",
        data_format=DataFormat.CSV,
        ingestion_mapping_reference="KeptCsv",
        ingest_by_tags=["batch-1"],
    )
    queued_client.ingest_from_stream(StreamDescriptor(io.BytesIO(b"1\n2\n3\n")), properties)
    wait_for(lambda: row_count(kusto_client, database, "Kept"))

    down(stack, only=["kusto-emulator"])
    # Enqueued while the emulator is down: the queue keeps it until the emulator is back.
    queued_client.ingest_from_stream(StreamDescriptor(io.BytesIO(b"4\n")), properties)
    up(stack, only=["kusto-emulator"])

    assert wait_for(lambda: row_count(kusto_client, database, "Kept") == 4 or None)
    mappings = kusto_client.execute_mgmt(database, ".show table Kept ingestion mappings")
    assert [row["Name"] for row in mappings.primary_results[0]] == ["KeptCsv"]
    tagged = kusto_client.execute_mgmt(
        database, ".show table Kept extents where tags has 'ingest-by:batch-1'"
    ).primary_results[0]
    assert sorted(row["RowCount"] for row in tagged) == [1, 3]
