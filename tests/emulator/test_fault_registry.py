"""The fault registry's counting and scoping (no servers needed)."""

from __future__ import annotations

import time

import pydantic
import pytest

from devstack.kusto_emulator.faults import FaultRegistry, FaultSpec


def test_counted_http_fault_is_used_up_on_matching_requests_only() -> None:
    registry = FaultRegistry()
    registry.add(FaultSpec(kind="http", endpoint="mgmt", status=429, count=2, database="a"))

    other_database = registry.http_fault("mgmt", "b", None)
    other_endpoint = registry.http_fault("query", "a", None)
    hits = [registry.http_fault("mgmt", "a", None) for _ in range(3)]

    assert other_database is None and other_endpoint is None
    assert [hit.status if hit else None for hit in hits] == [429, 429, None]


def test_refuse_writes_lasts_until_cleared_for_its_database() -> None:
    registry = FaultRegistry()
    registry.add(FaultSpec(kind="refuse_writes", database="a", table="T"))
    registry.add(FaultSpec(kind="refuse_writes", database="b"))

    assert registry.refuses_writes("a", "T") and registry.refuses_writes("a", "T")
    assert not registry.refuses_writes("a", "Other")
    registry.clear("a")
    assert not registry.refuses_writes("a", "T")
    assert registry.refuses_writes("b", "Any")


def test_ingestion_fault_defaults_to_kusto_error_codes() -> None:
    registry = FaultRegistry()
    registry.add(FaultSpec(kind="ingestion", failure="permanent"))

    fault = registry.ingestion_fault("db", "T")

    assert fault is not None and fault.permanent
    assert fault.error_code == "BadRequest_InvalidBlob"
    assert registry.ingestion_fault("db", "T") is None


def test_http_fault_needs_a_known_status() -> None:
    with pytest.raises(pydantic.ValidationError):
        FaultSpec(kind="http", status=404)


def test_spell_fault_answers_every_request_until_it_expires() -> None:
    registry = FaultRegistry()
    registry.add(FaultSpec(kind="http", endpoint="ingest", status=429, for_seconds=0.3))

    during = [registry.http_fault("ingest", "db", "T") for _ in range(5)]
    time.sleep(0.4)

    assert all(fault is not None and fault.status == 429 for fault in during)
    assert registry.http_fault("ingest", "db", "T") is None
    assert registry.describe() == []
