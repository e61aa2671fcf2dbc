"""Fixtures for the Kusto emulator tests: SDK clients on the stack's emulator, a fresh database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.ingest import QueuedIngestClient

from devstack.stack import StackConfig


@pytest.fixture(scope="session")
def kcsb(stack: StackConfig) -> KustoConnectionStringBuilder:
    return KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url)


@pytest.fixture(scope="session")
def kusto_client(kcsb: KustoConnectionStringBuilder) -> Iterator[KustoClient]:
    client = KustoClient(kcsb)
    yield client
    client.close()


@pytest.fixture(scope="session")
def queued_client(kcsb: KustoConnectionStringBuilder) -> Iterator[QueuedIngestClient]:
    client = QueuedIngestClient(kcsb)
    yield client
    client.close()


@pytest.fixture
def database(kusto_client: KustoClient, unique_name: str) -> Iterator[str]:
    """A fresh database, created through the SDK as a user would; dropped afterwards."""
    kusto_client.execute_mgmt("NetDefaultDB", f".create database {unique_name} ifnotexists")
    yield unique_name
    kusto_client.execute_mgmt("NetDefaultDB", f".drop database {unique_name} ifexists")


@pytest.fixture
def faults(stack: StackConfig, database: str) -> Iterator[Callable[..., None]]:
    """`faults(kind=..., ...)` injects a fault scoped to the test's database.

    Scoped, so that other clients of a shared emulator never see it; cleared after the test.
    """
    control = httpx.Client(base_url=stack.kusto_url, timeout=10)

    def inject(**spec: Any) -> None:
        control.post("/emulator/faults", json={"database": database, **spec}).raise_for_status()

    yield inject
    control.delete("/emulator/faults", params={"database": database}).raise_for_status()
    control.close()
