"""Fixtures shared by every test: the local stack, unique names, fresh topics, a Kusto
client and fresh databases, sink settings files."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

from devstack import kafka
from devstack.sessions import shared_stack
from devstack.stack import StackConfig


@pytest.fixture(scope="session")
def stack() -> Iterator[StackConfig]:
    """The local stack, up and healthy, on the ports of `StackConfig.from_env()`.

    Servers already running are reused and left running; the ones test sessions started are
    stopped when the last session using the stack ends. The value gives `bootstrap_servers`,
    `kusto_url`, `storage_connection_string`, `registry_url` and `devstack_dir`.
    """
    with shared_stack(StackConfig.from_env()) as config:
        yield config


def new_name() -> str:
    return f"t_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def unique_name() -> str:
    """A short lowercase name no other test uses, like `t_3f9a1c` (topic, database, table)."""
    return new_name()


@pytest.fixture
def make_topic(stack: StackConfig) -> Callable[..., str]:
    """Factory: `make_topic(partitions=3, name=None)` creates a fresh topic, returns its name."""

    def make(partitions: int = 3, name: str | None = None) -> str:
        topic = name or new_name()
        kafka.create_topic(stack.bootstrap_servers, topic, partitions)
        return topic

    return make


@pytest.fixture(scope="session")
def kusto(stack: StackConfig) -> Iterator[KustoClient]:
    """A Kusto client of the local emulator, through the unmodified SDK."""
    client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url))
    yield client
    client.close()


@pytest.fixture
def kusto_db(kusto: KustoClient, unique_name: str) -> str:
    """A fresh Kusto database for one test."""
    kusto.execute_mgmt(None, f".create database {unique_name} ifnotexists")
    return unique_name


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
