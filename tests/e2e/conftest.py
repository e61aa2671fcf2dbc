"""Helpers of the sink's end-to-end tests: Kusto tables, produced records, sink settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from confluent_kafka import Producer

from devstack.stack import StackConfig

pytestmark = pytest.mark.stack


@pytest.fixture(scope="session")
def kusto(stack: StackConfig) -> Iterator[KustoClient]:
    client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url))
    yield client
    client.close()


@pytest.fixture
def kusto_db(kusto: KustoClient, unique_name: str) -> str:
    """A fresh Kusto database for one test."""
    kusto.execute_mgmt(None, f".create database {unique_name} ifnotexists")
    return unique_name


@pytest.fixture
def produce(stack: StackConfig) -> Callable[..., None]:
    """``produce(topic, values, partitions=3)``: values spread round-robin by partition."""

    def send(topic: str, values: list[bytes | None], partitions: int = 3) -> None:
        producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
        for i, value in enumerate(values):
            producer.produce(topic, value=value, key=str(i).encode(), partition=i % partitions)
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(30) == 0

    return send


@pytest.fixture
def write_settings(tmp_path: Path, stack: StackConfig) -> Callable[..., Path]:
    """``write_settings(name, mappings, **overrides)``: a YAML settings file for the stack."""

    def write(name: str, mappings: list[dict[str, object]], **overrides: object) -> Path:
        settings = {
            "name": name,
            "kafka": {"bootstrap_servers": stack.bootstrap_servers},
            "kusto": {"ingestion_url": stack.kusto_url},
            "topics": sorted({str(m["topic"]) for m in mappings}),
            "mappings": mappings,
            "tempdir": str(tmp_path / "staging"),
            **overrides,
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    return write
