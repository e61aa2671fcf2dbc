"""KQL queries through the unmodified KustoClient (v2 and v1 endpoints), on ingested data."""

from __future__ import annotations

import datetime as dt
import gzip
import io

import httpx
import pytest
from azure.kusto.data import KustoClient
from azure.kusto.data.exceptions import KustoApiError
from azure.kusto.data.response import KustoResponseDataSetV1

from devstack.kusto_emulator import smoke
from devstack.stack import StackConfig

pytestmark = pytest.mark.stack

ORDERS = b"""{"id": 1, "customer": "ann", "amount": 10.5, "at": "2024-03-01T08:00Z", "tags": ["a"]}
{"id": 2, "customer": "bob", "amount": 4.0, "at": "2024-03-01T09:30Z", "tags": []}
{"id": 3, "customer": "ann", "amount": 1.5, "at": "2024-03-02T10:00Z", "tags": ["b", "c"]}
"""


@pytest.fixture
def orders(kusto_client: KustoClient, database: str) -> str:
    kusto_client.execute_mgmt(
        database,
        ".create table Orders (id:long, customer:string, amount:real, at:datetime, tags:dynamic)",
    )
    kusto_client.execute_mgmt(database, ".alter table Orders policy streamingingestion enable")
    kusto_client.execute_streaming_ingest(
        database, "Orders", io.BytesIO(gzip.compress(ORDERS)), None, "json"
    )
    return "Orders"


def test_filter_and_project_return_exact_typed_rows(
    kusto_client: KustoClient, database: str, orders: str
) -> None:
    result = kusto_client.execute_query(
        database,
        "Orders | where customer == 'ann' | project id, amount, at, tags | order by id asc",
    ).primary_results[0]

    assert [(c.column_name, c.column_type) for c in result.columns] == [
        ("id", "long"),
        ("amount", "real"),
        ("at", "datetime"),
        ("tags", "dynamic"),
    ]
    assert [row.to_list() for row in result] == [
        [1, 10.5, dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC), ["a"]],
        [3, 1.5, dt.datetime(2024, 3, 2, 10, tzinfo=dt.UTC), ["b", "c"]],
    ]


def test_summarize_by_group(kusto_client: KustoClient, database: str, orders: str) -> None:
    result = kusto_client.execute_query(
        database,
        "Orders | summarize total = sum(amount), n = count() by customer | order by customer asc",
    ).primary_results[0]

    assert [row.to_dict() for row in result] == [
        {"customer": "ann", "total": 12.0, "n": 2},
        {"customer": "bob", "total": 4.0, "n": 1},
    ]


def test_v1_query_endpoint(stack: StackConfig, database: str, orders: str) -> None:
    response = httpx.post(
        f"{stack.kusto_url}/v1/rest/query", json={"db": database, "csl": "Orders | count"}
    )

    result = KustoResponseDataSetV1(response.json()).primary_results[0]
    assert [row["Count"] for row in result] == [3]


def test_unknown_table_is_a_permanent_error_naming_it(
    kusto_client: KustoClient, database: str
) -> None:
    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_query(database, "Missing | take 1")

    error = raised.value.get_api_error()
    assert error.permanent is True
    assert "Missing" in error.description


def test_unsupported_kql_is_a_syntax_error(
    kusto_client: KustoClient, database: str, orders: str
) -> None:
    with pytest.raises(KustoApiError) as raised:
        kusto_client.execute_query(database, "Orders | frobnicate")

    assert raised.value.get_api_error().code == "BadRequest_SyntaxError"


def test_public_sdk_smoke_script(stack: StackConfig, unique_name: str) -> None:
    """The issue's "done when": database, table, JSON mapping, queued + streaming, KQL."""
    assert smoke.run(stack.kusto_url, unique_name) == smoke.EXPECTED


def test_management_command_on_the_query_endpoint(
    kusto_client: KustoClient, database: str, orders: str
) -> None:
    result = kusto_client.execute_query(database, ".show tables").primary_results[0]

    assert [row["TableName"] for row in result] == ["Orders"]
