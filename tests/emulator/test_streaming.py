"""Streaming ingestion through the unmodified ManagedStreamingIngestClient and KustoClient."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator

import httpx
import orjson
import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import KustoApiError
from azure.kusto.ingest import (
    BlobDescriptor,
    IngestionProperties,
    IngestionStatus,
    ManagedStreamingIngestClient,
    StreamDescriptor,
)
from azure.storage.blob import BlobClient

from devstack.kusto_emulator.testing import row_count, wait_for
from devstack.stack import StackConfig

pytestmark = pytest.mark.stack

MAPPING = (
    '[{"column":"id","Properties":{"Path":"$.id"}},'
    '{"column":"body","Properties":{"Path":"$.body"}}]'
)


@pytest.fixture
def managed_client(kcsb: KustoConnectionStringBuilder) -> Iterator[ManagedStreamingIngestClient]:
    client = ManagedStreamingIngestClient(kcsb, kcsb)
    yield client
    client.close()


@pytest.fixture
def table(kusto_client: KustoClient, database: str) -> str:
    kusto_client.execute_mgmt(database, ".create table Logs (id:long, body:string)")
    kusto_client.execute_mgmt(
        database, f".create table Logs ingestion json mapping 'LogsJson' '{MAPPING}'"
    )
    kusto_client.execute_mgmt(database, ".alter table Logs policy streamingingestion enable")
    return "Logs"


def json_properties(database: str, table: str) -> IngestionProperties:
    return IngestionProperties(
        database, table, data_format=DataFormat.JSON, ingestion_mapping_reference="LogsJson"
    )


def lines(count: int, body_bytes: int = 8) -> bytes:
    return b"\n".join(
        orjson.dumps({"id": i, "body": os.urandom(body_bytes).hex()}) for i in range(count)
    )


def test_small_payload_goes_by_streaming(
    kusto_client: KustoClient,
    managed_client: ManagedStreamingIngestClient,
    database: str,
    table: str,
) -> None:
    result = managed_client.ingest_from_stream(
        StreamDescriptor(io.BytesIO(lines(50))), json_properties(database, table)
    )

    assert result.status is IngestionStatus.SUCCESS
    assert row_count(kusto_client, database, table) == 50


def test_payload_over_4_mib_falls_back_to_queued(
    kusto_client: KustoClient,
    managed_client: ManagedStreamingIngestClient,
    database: str,
    table: str,
) -> None:
    # Random hex does not compress below 4 MiB, so the SDK must queue it.
    data = lines(10_000, body_bytes=600)
    assert len(gzip.compress(data)) > 4 * 1024 * 1024

    result = managed_client.ingest_from_stream(
        StreamDescriptor(io.BytesIO(data)), json_properties(database, table)
    )

    assert result.status is IngestionStatus.QUEUED
    assert wait_for(lambda: row_count(kusto_client, database, table), timeout=60) == 10_000


def test_table_without_streaming_policy_is_refused_permanently(
    kusto_client: KustoClient, managed_client: ManagedStreamingIngestClient, database: str
) -> None:
    kusto_client.execute_mgmt(database, ".create table Cold (id:long)")

    with pytest.raises(KustoApiError) as raised:
        managed_client.ingest_from_stream(
            StreamDescriptor(io.BytesIO(b"1\n")),
            IngestionProperties(database, "Cold", data_format=DataFormat.CSV),
        )

    error = raised.value.get_api_error()
    assert error.code == "BadRequest_StreamingIngestionPolicyNotEnabled"
    assert error.permanent is True


def test_database_streaming_policy_covers_its_tables(
    kusto_client: KustoClient, database: str
) -> None:
    kusto_client.execute_mgmt(database, ".create table Warm (id:long)")
    kusto_client.execute_mgmt(
        database, f".alter database {database} policy streamingingestion enable"
    )

    kusto_client.execute_streaming_ingest(
        database, "Warm", io.BytesIO(gzip.compress(b"1\n2\n")), None, "csv"
    )

    assert row_count(kusto_client, database, "Warm") == 2


def test_raw_uncompressed_body_is_accepted(
    stack: StackConfig, kusto_client: KustoClient, database: str, table: str
) -> None:
    response = httpx.post(
        f"{stack.kusto_url}/v1/rest/ingest/{database}/{table}",
        params={"streamFormat": "multijson", "mappingName": "LogsJson"},
        content=b'[{"id": 1, "body": "a"}, {"id": 2, "body": "b"}]',
    )

    assert response.status_code == 200
    assert response.json()["Tables"][0]["Rows"][0][0] == 2
    assert row_count(kusto_client, database, table) == 2


def test_bad_rows_fail_with_kusto_error_code(
    kusto_client: KustoClient, database: str, table: str
) -> None:
    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_streaming_ingest(
            database,
            table,
            io.BytesIO(gzip.compress(b"{not json")),
            None,
            "multijson",
            mapping_name="LogsJson",
        )

    assert raised.value.get_api_error().code == "BadRequest_InvalidBlob"
    assert row_count(kusto_client, database, table) == 0


def test_streaming_from_a_blob_reference(
    kusto_client: KustoClient,
    managed_client: ManagedStreamingIngestClient,
    database: str,
    table: str,
) -> None:
    resources = kusto_client.execute_mgmt("NetDefaultDB", ".get ingestion resources")
    container = next(
        row["StorageRoot"]
        for row in resources.primary_results[0]
        if row["ResourceTypeName"] == "TempStorage"
    )
    address, sas = container.split("?", 1)
    blob_url = f"{address}/{database}-logs.json?{sas}"
    BlobClient.from_blob_url(blob_url).upload_blob(lines(4))

    result = managed_client.ingest_from_blob(
        BlobDescriptor(blob_url), json_properties(database, table)
    )

    assert result.status is IngestionStatus.SUCCESS
    assert row_count(kusto_client, database, table) == 4
