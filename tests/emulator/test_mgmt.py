"""Management commands through the unmodified KustoClient."""

from __future__ import annotations

import orjson
import pytest
from azure.kusto.data import KustoClient
from azure.kusto.data.exceptions import KustoApiError
from azure.storage.blob import BlobClient

pytestmark = pytest.mark.stack

JSON_MAPPING = (
    '[{"column":"id","Properties":{"Path":"$.id"}},{"column":"name","Properties":{"Path":"$.n"}}]'
)


def rows(client: KustoClient, database: str, command: str) -> list[dict]:
    return [row.to_dict() for row in client.execute_mgmt(database, command).primary_results[0]]


def test_get_ingestion_resources_lists_all_five_kinds_with_sas(kusto_client: KustoClient) -> None:
    resources = rows(kusto_client, "NetDefaultDB", ".get ingestion resources")

    kinds = {row["ResourceTypeName"] for row in resources}
    assert kinds == {
        "SecuredReadyForAggregationQueue",
        "FailedIngestionsQueue",
        "SuccessfulIngestionsQueue",
        "TempStorage",
        "IngestionsStatusTable",
    }
    queues_and_containers = [
        r for r in resources if r["ResourceTypeName"] != "IngestionsStatusTable"
    ]
    assert all("sig=" in row["StorageRoot"] for row in queues_and_containers)


def test_identity_token_and_version(kusto_client: KustoClient) -> None:
    token = rows(kusto_client, "NetDefaultDB", ".get kusto identity token")
    version = rows(kusto_client, "NetDefaultDB", ".show version")

    assert token[0]["AuthorizationContext"]
    assert version[0]["ServiceType"] == "Engine"


def test_create_table_and_show_schema(kusto_client: KustoClient, database: str) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long, name:string, at:datetime)")

    tables = rows(kusto_client, database, ".show tables")
    csl = rows(kusto_client, database, ".show table Events cslschema")
    as_json = rows(kusto_client, database, ".show table Events schema as json")

    assert [row["TableName"] for row in tables] == ["Events"]
    assert csl[0]["Schema"] == "id:long,name:string,at:datetime"
    ordered = orjson.loads(as_json[0]["Schema"])["OrderedColumns"]
    assert [(c["Name"], c["CslType"]) for c in ordered] == [
        ("id", "long"),
        ("name", "string"),
        ("at", "datetime"),
    ]


def test_create_merge_adds_missing_columns_in_order(
    kusto_client: KustoClient, database: str
) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long)")
    kusto_client.execute_mgmt(database, ".create-merge table Events (id:long, extra:dynamic)")

    csl = rows(kusto_client, database, ".show table Events cslschema")

    assert csl[0]["Schema"] == "id:long,extra:dynamic"


def test_create_merge_refuses_a_type_change(kusto_client: KustoClient, database: str) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long)")

    with pytest.raises(KustoApiError, match="id"):
        kusto_client.execute_mgmt(database, ".create-merge table Events (id:string)")


def test_drop_table(kusto_client: KustoClient, database: str) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long)")

    kusto_client.execute_mgmt(database, ".drop table Events")

    assert rows(kusto_client, database, ".show tables") == []
    kusto_client.execute_mgmt(database, ".drop table Events ifexists")


def test_ingestion_mapping_round_trip(kusto_client: KustoClient, database: str) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long, name:string)")

    kusto_client.execute_mgmt(
        database, f".create table Events ingestion json mapping \"EventsJson\" '{JSON_MAPPING}'"
    )
    mappings = rows(kusto_client, database, ".show table Events ingestion mappings")

    assert [(m["Name"], m["Kind"]) for m in mappings] == [("EventsJson", "Json")]
    assert orjson.loads(mappings[0]["Mapping"]) == orjson.loads(JSON_MAPPING)


def test_unknown_command_gets_kusto_error_shape(kusto_client: KustoClient, database: str) -> None:
    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_mgmt(database, ".frobnicate table Events")

    error = raised.value.get_api_error()
    assert error.code == "BadRequest_SyntaxError"
    assert error.permanent is True


def test_missing_table_is_entity_not_found(kusto_client: KustoClient, database: str) -> None:
    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_mgmt(database, ".show table Missing cslschema")

    assert raised.value.get_api_error().code == "BadRequest_EntityNotFound"


def test_ingest_into_table_from_a_blob(kusto_client: KustoClient, database: str) -> None:
    kusto_client.execute_mgmt(database, ".create table Events (id:long, name:string)")
    resources = rows(kusto_client, "NetDefaultDB", ".get ingestion resources")
    container = next(r["StorageRoot"] for r in resources if r["ResourceTypeName"] == "TempStorage")
    address, sas = container.split("?", 1)
    blob_url = f"{address}/{database}-events.csv?{sas}"
    BlobClient.from_blob_url(blob_url).upload_blob(b"1,ann\n2,bob\n")

    result = rows(
        kusto_client,
        database,
        f".ingest into table Events (h'{blob_url}') with (format='csv', tags='[\"drop-by:b\"]')",
    )
    extents = rows(kusto_client, database, ".show table Events extents")

    assert [row["HasErrors"] for row in result] == [False]
    assert [(row["RowCount"], row["Tags"]) for row in extents] == [(2, "drop-by:b")]
