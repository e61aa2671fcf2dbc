"""Queued ingestion through the unmodified QueuedIngestClient and KustoIngestStatusQueues."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import fastavro
import orjson
import pyarrow as pa
import pyarrow.orc
import pyarrow.parquet
import pytest
from azure.kusto.data import KustoClient
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import (
    BlobDescriptor,
    IngestionProperties,
    QueuedIngestClient,
    ReportLevel,
    StreamDescriptor,
)
from azure.kusto.ingest.status import KustoIngestStatusQueues
from azure.storage.queue import QueueServiceClient

from devstack.kusto_emulator.azure_storage import INGESTION_QUEUE
from devstack.kusto_emulator.testing import row_count, status_messages, wait_for
from devstack.stack import StackConfig

pytestmark = pytest.mark.stack

EVENTS_MAPPING = (
    '[{"column":"id","Properties":{"Path":"$.id"}},'
    '{"column":"name","Properties":{"Path":"$.user.name"}}]'
)


@pytest.fixture
def events(kusto_client: KustoClient, database: str) -> str:
    kusto_client.execute_mgmt(database, ".create table Events (id:long, name:string)")
    kusto_client.execute_mgmt(
        database, f".create table Events ingestion json mapping 'EventsJson' '{EVENTS_MAPPING}'"
    )
    return "Events"


def json_lines(count: int, start: int = 0) -> bytes:
    return b"\n".join(
        orjson.dumps({"id": i, "user": {"name": f"user-{i}"}}) for i in range(start, start + count)
    )


def enqueue(client: QueuedIngestClient, data: bytes, properties: IngestionProperties) -> str:
    source_id = uuid.uuid4()
    client.ingest_from_stream(StreamDescriptor(io.BytesIO(data), source_id=source_id), properties)
    return str(source_id)


def tagged_properties(database: str, table: str, batch: str) -> IngestionProperties:
    return IngestionProperties(
        database,
        table,
        data_format=DataFormat.JSON,
        ingestion_mapping_reference="EventsJson",
        ingest_by_tags=[batch],
        drop_by_tags=[batch],
        ingest_if_not_exists=[batch],
        report_level=ReportLevel.FailuresAndSuccesses,
    )


def test_same_batch_twice_with_ingest_if_not_exists_lands_once(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    properties = tagged_properties(database, events, "orders/0/0-99")
    data = json_lines(100)

    first = enqueue(queued_client, data, properties)
    successes, _ = status_messages(queues, first)
    second = enqueue(queued_client, data, properties)
    _, failures = status_messages(queues, second)

    assert successes[0].Database == database and successes[0].Table == events
    assert successes[0].SucceededOn
    assert failures[0].ErrorCode == "Skipped_IngestByTagAlreadyExists"
    assert failures[0].FailureStatus == "Permanent"
    assert row_count(kusto_client, database, events) == 100


def test_extent_carries_tags_and_drop_by_tag_removes_it(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    status_messages(
        queues, enqueue(queued_client, json_lines(5), tagged_properties(database, events, "a"))
    )
    status_messages(
        queues, enqueue(queued_client, json_lines(7), tagged_properties(database, events, "b"))
    )

    tagged = kusto_client.execute_mgmt(
        database, ".show table Events extents where tags has 'ingest-by:a'"
    ).primary_results[0]
    kusto_client.execute_mgmt(
        database, ".drop extents <| .show table Events extents where tags has 'drop-by:a'"
    )

    assert [(row["RowCount"], row["Tags"].split("\r\n")) for row in tagged] == [
        (5, ["drop-by:a", "ingest-by:a"])
    ]
    assert row_count(kusto_client, database, events) == 7


def test_blob_that_is_not_its_format_fails_with_details(
    queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    properties = IngestionProperties(
        database, events, data_format=DataFormat.PARQUET, report_level=ReportLevel.FailuresOnly
    )

    source_id = enqueue(queued_client, b"this is not parquet", properties)
    successes, failures = status_messages(queues, source_id)

    assert successes == []
    assert failures[0].ErrorCode == "BadRequest_InvalidBlob"
    assert failures[0].FailureStatus == "Permanent"
    assert "parquet" in failures[0].Details
    assert failures[0].ShouldRetry is False


def test_ingestion_into_missing_table_fails(
    queued_client: QueuedIngestClient, database: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    properties = IngestionProperties(
        database, "Missing", data_format=DataFormat.CSV, report_level=ReportLevel.FailuresOnly
    )

    _, failures = status_messages(queues, enqueue(queued_client, b"1,a\n", properties))

    assert failures[0].ErrorCode == "BadRequest_TableNotExist"


def test_failures_show_up_in_show_ingestion_failures(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    properties = IngestionProperties(
        database, events, data_format=DataFormat.ORC, report_level=ReportLevel.FailuresOnly
    )
    status_messages(queues, enqueue(queued_client, b"not orc", properties))

    failures = kusto_client.execute_mgmt(database, ".show ingestion failures").primary_results[0]

    assert [(row["Table"], row["ErrorCode"]) for row in failures] == [
        (events, "BadRequest_InvalidBlob")
    ]


def test_csv_with_ordinal_mapping_and_header_skipped(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str
) -> None:
    kusto_client.execute_mgmt(database, ".create table People (name:string, age:long)")
    kusto_client.execute_mgmt(
        database,
        ".create table People ingestion csv mapping 'PeopleCsv' "
        '\'[{"column":"name","Properties":{"Ordinal":"1"}},'
        '{"column":"age","Properties":{"Ordinal":"0"}}]\'',
    )
    properties = IngestionProperties(
        database,
        "People",
        data_format=DataFormat.CSV,
        ingestion_mapping_reference="PeopleCsv",
        ignore_first_record=True,
        report_level=ReportLevel.FailuresAndSuccesses,
    )

    source_id = enqueue(queued_client, b"age,name\n31,ann\n42,bob\n", properties)
    successes, _ = status_messages(KustoIngestStatusQueues(queued_client), source_id)

    assert successes
    assert row_count(kusto_client, database, "People") == 2


@pytest.mark.parametrize("data_format", [DataFormat.PARQUET, DataFormat.ORC, DataFormat.AVRO])
def test_columnar_formats_are_ingested_by_column_name(
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    tmp_path: Path,
    data_format: DataFormat,
) -> None:
    kusto_client.execute_mgmt(database, ".create table Metrics (name:string, value:real)")
    path = tmp_path / f"metrics.{data_format.kusto_value}"
    names, values = ["cpu", "mem", "disk"], [0.5, 0.25, 0.125]
    if data_format is DataFormat.AVRO:
        schema = {
            "type": "record",
            "name": "Metric",
            "fields": [{"name": "name", "type": "string"}, {"name": "value", "type": "double"}],
        }
        with path.open("wb") as stream:
            records = [{"name": n, "value": v} for n, v in zip(names, values, strict=True)]
            fastavro.writer(stream, schema, records)
    else:
        table = pa.table({"name": names, "value": values})
        writer = (
            pyarrow.parquet.write_table
            if data_format is DataFormat.PARQUET
            else pyarrow.orc.write_table
        )
        writer(table, str(path))
    properties = IngestionProperties(
        database, "Metrics", data_format=data_format, report_level=ReportLevel.FailuresAndSuccesses
    )

    queued_client.ingest_from_file(str(path), properties)

    assert wait_for(lambda: row_count(kusto_client, database, "Metrics")) == 3


def test_worker_survives_a_garbage_queue_message(
    stack: StackConfig,
    kusto_client: KustoClient,
    queued_client: QueuedIngestClient,
    database: str,
    events: str,
) -> None:
    raw_queue = QueueServiceClient.from_connection_string(
        stack.storage_connection_string
    ).get_queue_client(INGESTION_QUEUE)
    raw_queue.send_message("this is neither base64 nor JSON")
    properties = tagged_properties(database, events, "after-garbage")

    successes, _ = status_messages(
        KustoIngestStatusQueues(queued_client), enqueue(queued_client, json_lines(3), properties)
    )

    assert successes
    assert row_count(kusto_client, database, events) == 3


def test_missing_blob_fails_with_download_error(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    resources = kusto_client.execute_mgmt("NetDefaultDB", ".get ingestion resources")
    container = next(
        row["StorageRoot"]
        for row in resources.primary_results[0]
        if row["ResourceTypeName"] == "TempStorage"
    )
    address, sas = container.split("?", 1)
    source_id = uuid.uuid4()
    properties = IngestionProperties(
        database, events, data_format=DataFormat.JSON, report_level=ReportLevel.FailuresOnly
    )

    blob = BlobDescriptor(f"{address}/deleted.json?{sas}", 10, source_id)
    queued_client.ingest_from_blob(blob, properties)
    _, failures = status_messages(KustoIngestStatusQueues(queued_client), str(source_id))

    assert failures[0].ErrorCode == "Download_SourceNotFound"
    assert failures[0].IngestionSourcePath == f"{address}/deleted.json"


def test_do_not_report_posts_no_status_but_failure_is_listed(
    kusto_client: KustoClient, queued_client: QueuedIngestClient, database: str, events: str
) -> None:
    queues = KustoIngestStatusQueues(queued_client)
    properties = IngestionProperties(
        database, events, data_format=DataFormat.PARQUET, report_level=ReportLevel.DoNotReport
    )

    source_id = enqueue(queued_client, b"not parquet", properties)
    failures = wait_for(
        lambda: list(
            kusto_client.execute_mgmt(database, ".show ingestion failures").primary_results[0]
        )
    )

    assert source_id in failures[0]["IngestionSourcePath"]
    assert all(m.IngestionSourceId != source_id for m in queues.failure.pop(16))
