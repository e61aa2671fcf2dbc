"""Fixtures of the fault matrix: a sink with both dead-letter topics, emulator faults,
servers stopped and started again, and the exactly-once ledger every test ends with."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.kusto.data import KustoClient
from e2e.e2e_helpers import create_event_table, events_mapping
from fault_helpers import RETRY, FaultSink, Ledger

from devstack.stack import StackConfig, down, up


@pytest.fixture
def faults(stack: StackConfig) -> Iterator[Callable[..., None]]:
    """`faults(kind=..., ...)` injects an emulator fault; all are cleared after the test."""
    control = httpx.Client(base_url=stack.kusto_url, timeout=10)

    def inject(**spec: Any) -> None:
        control.post("/emulator/faults", json=spec).raise_for_status()

    yield inject
    control.delete("/emulator/faults").raise_for_status()
    control.close()


@pytest.fixture
def outage(stack: StackConfig) -> Iterator[Callable[[str, float], None]]:
    """`outage(server, seconds)`: stop a devstack server now, start it again ``seconds``
    later in the background. Every server is up again when the test ends."""
    restarts: list[threading.Thread] = []
    stopped: set[str] = set()

    def stop_for(server: str, seconds: float) -> None:
        down(stack, only=[server])
        stopped.add(server)
        restart = threading.Timer(seconds, lambda: up(stack, only=[server]))
        restart.start()
        restarts.append(restart)

    yield stop_for
    for restart in restarts:
        restart.join(120)
    if stopped:
        up(stack, only=sorted(stopped))


@pytest.fixture
def ledger(stack: StackConfig, kusto: KustoClient, kusto_db: str) -> Ledger:
    return Ledger(stack, kusto, kusto_db)


@pytest.fixture
def fault_sink(
    stack: StackConfig,
    kusto: KustoClient,
    kusto_db: str,
    make_topic: Callable[..., str],
    write_settings: Callable[..., Path],
    unique_name: str,
) -> Callable[..., FaultSink]:
    """``fault_sink(partitions=1, flush_size_bytes=..., streaming=False, **overrides)``: one
    JSON topic into table Events, a dead-letter and a misc dead-letter topic on the source
    cluster."""

    def make(
        partitions: int = 1,
        flush_size_bytes: int = 8_000,
        streaming: bool = False,
        **overrides: Any,
    ) -> FaultSink:
        topic = make_topic(partitions=partitions)
        create_event_table(kusto, kusto_db, "Events")
        if streaming:
            kusto.execute_mgmt(kusto_db, ".alter table Events policy streamingingestion enable")
        dlq, misc = make_topic(partitions=1), make_topic(partitions=1)
        mapping = {
            **events_mapping(topic, kusto_db),
            "tombstones": "dead_letter",
            "streaming": streaming,
        }
        settings: dict[str, Any] = {
            "value_converter": {"kind": "json"},
            "flush_size_bytes": flush_size_bytes,
            "behavior_on_error": "log",
            "retry": RETRY,
            "dead_letter": {"bootstrap_servers": stack.bootstrap_servers, "topic": dlq},
            "misc_dead_letter": {"bootstrap_servers": stack.bootstrap_servers, "topic": misc},
            **overrides,
        }
        mappings = settings.pop("mappings", [mapping])
        path = write_settings(unique_name, mappings, **settings)
        return FaultSink(path, [topic], ["Events"], [dlq, misc])

    return make
