"""Fault matrix rows 6 and 9: Kusto failing batches, transiently and for good."""

from __future__ import annotations

import httpx
import pytest
from azure.kusto.data import KustoClient
from e2e.e2e_helpers import create_event_table
from fault_helpers import POISON, FaultSink, Ledger, read_topic
from test_outages import on_first_submit

from pipelines.commit import ERROR_CLASS_HEADER, ERROR_MESSAGE_HEADER

pytestmark = pytest.mark.stack


def test_transient_ingestion_failures_then_a_permanent_one_goes_to_the_misc_topic(
    fault_sink, ledger: Ledger, faults, kusto_db: str
) -> None:
    sink: FaultSink = fault_sink(partitions=1)
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)
    # Kusto reports the first two queued batches failed (transient), the third refused.
    faults(kind="ingestion", failure="transient", count=2, database=kusto_db)
    faults(
        kind="ingestion",
        failure="permanent",
        error_code="BadRequest_InvalidMappingReference",
        count=1,
        database=kusto_db,
    )

    with sink.runtime() as runtime:
        (rng,) = runtime.plan()
        report = runtime.deliver(rng)
        row = ledger.check(
            "6. transient ingestion failures, then a permanent one (bad mapping)",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )

    assert 0 < report.misc_dead_lettered < 300, "one batch, not the range, was refused"
    assert row["in_dlq"] == report.misc_dead_lettered + len(POISON)
    misc = read_topic(ledger.stack, sink.dead_letter_topics[1])
    headers = dict(misc[0].headers() or [])
    assert headers[ERROR_CLASS_HEADER] == b"pipelines.errors.IngestionFailed"
    assert b"BadRequest_InvalidMappingReference" in headers[ERROR_MESSAGE_HEADER]


def test_table_dropped_mid_run_then_created_again(
    fault_sink, ledger: Ledger, faults, kusto: KustoClient, kusto_db: str, monkeypatch
) -> None:
    sink: FaultSink = fault_sink(partitions=1, max_range_records=152)
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)
    # Queued ingestions wait 2 s, so the table is gone before the first batch lands.
    faults(kind="delay", seconds=2, database=kusto_db)
    dropped = on_first_submit(
        monkeypatch, lambda: kusto.execute_mgmt(kusto_db, ".drop table Events"), before=False
    )

    with sink.runtime() as runtime:
        first, second = runtime.plan()
        refused = runtime.deliver(first)
        create_event_table(kusto, kusto_db, "Events")
        landed = runtime.deliver(second)
        row = ledger.check(
            "9. target table dropped mid-run, then created again",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )

    assert dropped
    assert refused.misc_dead_lettered == first.records and refused.rows == 0
    assert landed.misc_dead_lettered == 0 and landed.rows == second.records - len(POISON)
    assert row["in_kusto"] == landed.rows


def test_batches_streaming_ingestion_refuses_go_to_the_misc_topic(
    fault_sink, ledger: Ledger, faults, stack, kusto_db: str
) -> None:
    sink: FaultSink = fault_sink(partitions=1, streaming=True, max_range_records=152)
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)
    faults(kind="refuse_writes", database=kusto_db, table="Events")

    with sink.runtime() as runtime:
        first, second = runtime.plan()
        refused = runtime.deliver(first)
        httpx.delete(f"{stack.kusto_url}/emulator/faults").raise_for_status()
        landed = runtime.deliver(second)
        row = ledger.check(
            "6b. streaming ingestion refusing batches (permanent)",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )

    assert refused.misc_dead_lettered == first.records and refused.rows == 0
    assert landed.rows == second.records - len(POISON)
    assert {r.mode for r in landed.receipts} == {"streaming"}
    assert row["in_dlq"] == first.records + len(POISON)
