"""Injected faults, observed through the unmodified SDK as on a real cluster."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import KustoApiError, KustoNetworkError, KustoThrottlingError
from azure.kusto.ingest import (
    IngestionProperties,
    IngestionStatus,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
    ReportLevel,
    StreamDescriptor,
)
from azure.kusto.ingest.status import KustoIngestStatusQueues

from devstack.kusto_emulator.testing import row_count, status_messages, wait_for

pytestmark = pytest.mark.stack

Faults = Callable[..., None]


@pytest.fixture
def table(kusto_client: KustoClient, database: str) -> str:
    kusto_client.execute_mgmt(database, ".create table Numbers (n:long)")
    kusto_client.execute_mgmt(database, ".alter table Numbers policy streamingingestion enable")
    return "Numbers"


@pytest.fixture
def managed_client(kcsb: KustoConnectionStringBuilder) -> Iterator[ManagedStreamingIngestClient]:
    client = ManagedStreamingIngestClient(kcsb, kcsb)
    # No waiting between the SDK's own streaming attempts: keeps the test quick.
    client._set_retry_settings(max_seconds_per_retry=0.01)
    yield client
    client.close()


def enqueue_csv(client: QueuedIngestClient, database: str, table: str, data: bytes) -> str:
    source_id = uuid.uuid4()
    properties = IngestionProperties(
        database, table, data_format=DataFormat.CSV, report_level=ReportLevel.FailuresAndSuccesses
    )
    client.ingest_from_stream(StreamDescriptor(io.BytesIO(data), source_id=source_id), properties)
    return str(source_id)


def test_429_is_a_throttling_error(
    kusto_client: KustoClient, database: str, faults: Faults
) -> None:
    faults(kind="http", endpoint="mgmt", status=429, count=1)

    with pytest.raises(KustoThrottlingError):
        kusto_client.execute_mgmt(database, ".show tables")
    kusto_client.execute_mgmt(database, ".show tables")


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalServiceError"), (503, "ServiceUnavailable")]
)
def test_server_errors_are_transient_api_errors(
    kusto_client: KustoClient, database: str, faults: Faults, status: int, code: str
) -> None:
    faults(kind="http", endpoint="query", status=status, count=1)

    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_query(database, "print 1")

    assert raised.value.get_api_error().code == code
    assert raised.value.get_api_error().permanent is False


def test_hang_past_the_client_timeout_is_a_network_error(
    kusto_client: KustoClient, database: str, faults: Faults
) -> None:
    faults(kind="http", endpoint="mgmt", status="hang", hang_seconds=45, count=1)
    properties = ClientRequestProperties()
    # The SDK waits this long plus 30 s before it gives up.
    properties.set_option(properties.request_timeout_option_name, timedelta(seconds=1))

    started = time.monotonic()
    with pytest.raises(KustoNetworkError):
        kusto_client.execute_mgmt(database, ".show tables", properties)

    assert time.monotonic() - started < 40


def test_faults_are_scoped_to_their_table(
    kusto_client: KustoClient,
    managed_client: ManagedStreamingIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    kusto_client.execute_mgmt(database, ".create table Other (n:long)")
    faults(kind="refuse_writes", table="Other")

    result = managed_client.ingest_from_stream(
        StreamDescriptor(io.BytesIO(b"1\n2\n")),
        IngestionProperties(database, table, data_format=DataFormat.CSV),
    )

    assert result.status is IngestionStatus.SUCCESS
    assert row_count(kusto_client, database, table) == 2


def test_streaming_429_makes_managed_client_fall_back_to_queued(
    kusto_client: KustoClient,
    managed_client: ManagedStreamingIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    # The SDK tries streaming three times before it falls back.
    faults(kind="http", endpoint="ingest", status=429, table=table, count=3)

    result = managed_client.ingest_from_stream(
        StreamDescriptor(io.BytesIO(b"1\n2\n3\n")),
        IngestionProperties(database, table, data_format=DataFormat.CSV),
    )

    assert result.status is IngestionStatus.QUEUED
    assert wait_for(lambda: row_count(kusto_client, database, table)) == 3


def test_refused_writes_fail_streaming_permanently(
    managed_client: ManagedStreamingIngestClient, database: str, table: str, faults: Faults
) -> None:
    faults(kind="refuse_writes", table=table)

    with pytest.raises(KustoApiError) as raised:
        managed_client.ingest_from_stream(
            StreamDescriptor(io.BytesIO(b"1\n")),
            IngestionProperties(database, table, data_format=DataFormat.CSV),
        )

    assert raised.value.get_api_error().permanent is True


def test_transient_ingestion_failure_then_success(
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    faults(kind="ingestion", failure="transient", count=1, table=table)

    _, failures = status_messages(queues, enqueue_csv(queued_client, database, table, b"1\n"))
    successes, _ = status_messages(queues, enqueue_csv(queued_client, database, table, b"2\n"))

    assert failures[0].FailureStatus == "Transient"
    assert failures[0].ShouldRetry is True
    assert failures[0].ErrorCode == "General_RetryAttemptsExceeded"
    assert successes
    assert row_count(kusto_client, database, table) == 1


def test_permanent_ingestion_failure_carries_the_chosen_code(
    queued_client: QueuedIngestClient, database: str, table: str, faults: Faults
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    faults(
        kind="ingestion",
        failure="permanent",
        error_code="BadRequest_InvalidMapping",
        table=table,
    )

    _, failures = status_messages(queues, enqueue_csv(queued_client, database, table, b"1\n"))

    assert failures[0].FailureStatus == "Permanent"
    assert failures[0].ErrorCode == "BadRequest_InvalidMapping"
    assert failures[0].ShouldRetry is False


def test_refused_writes_fail_queued_ingestion(
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    faults(kind="refuse_writes", table=table)

    _, failures = status_messages(
        KustoIngestStatusQueues(queued_client), enqueue_csv(queued_client, database, table, b"1\n")
    )

    assert failures[0].FailureStatus == "Permanent"
    assert row_count(kusto_client, database, table) == 0


def test_ingestion_delay(
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    faults(kind="delay", seconds=2, table=table)

    started = time.monotonic()
    source_id = enqueue_csv(queued_client, database, table, b"1\n")
    status_messages(KustoIngestStatusQueues(queued_client), source_id)

    assert time.monotonic() - started >= 2
    assert row_count(kusto_client, database, table) == 1


def test_delay_of_one_table_does_not_hold_up_another(
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    table: str,
    faults: Faults,
) -> None:
    kusto_client.execute_mgmt(database, ".create table Prompt (n:long)")
    faults(kind="delay", seconds=5, table=table)
    queues = KustoIngestStatusQueues(queued_client)

    enqueue_csv(queued_client, database, table, b"1\n")
    started = time.monotonic()
    status_messages(queues, enqueue_csv(queued_client, database, "Prompt", b"1\n"))

    assert time.monotonic() - started < 5
    assert row_count(kusto_client, database, table) == 0
