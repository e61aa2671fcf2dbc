"""Fault matrix rows 3-5: Kafka, Azurite and the Kusto emulator down or misbehaving while a
range is delivered. Each ends with every record exactly once in Kusto or a dead letter."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fault_helpers import POISON, FaultSink, Ledger

import pipelines.runtime
from pipelines.batch import BatchFile
from pipelines.ingest import IngestTarget, KustoIngestor, Receipt
from pipelines.plan import OffsetRange
from pipelines.records import KafkaRecord

pytestmark = pytest.mark.stack

# librdkafka prefetches whole partitions by default; small fetches and a one-message queue
# make the reader go back to the broker as it reads, so a broker stopped mid-read is missed.
SLOW_FETCHES = {"max.partition.fetch.bytes": "2048", "queued.min.messages": "1"}


def test_kafka_broker_stopped_mid_read_and_started_10s_later(
    fault_sink, ledger: Ledger, outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink: FaultSink = fault_sink(
        partitions=1,
        kafka={"bootstrap_servers": ledger.stack.bootstrap_servers, "librdkafka": SLOW_FETCHES},
        # A broker restart under a loaded CI machine took ~30 s: more than the default 20 s.
        retry={"max_time_ms": 60_000, "backoff_ms": 500},
    )
    records = ledger.events(600)
    ledger.produce(sink.topics[0], records[:300] + POISON + records[300:])
    real_read = pipelines.runtime.read_range
    stopped_at: list[int] = []

    def read_and_stop_the_broker(consumer, rng: OffsetRange) -> Iterator[list[KafkaRecord]]:
        for part in real_read(consumer, rng, batch_size=50):
            yield part
            if not stopped_at:
                stopped_at.append(part[-1].offset() or 0)
                outage("kafka", 10)

    monkeypatch.setattr(pipelines.runtime, "read_range", read_and_stop_the_broker)
    sink.deliver_all()

    assert stopped_at and stopped_at[0] < 300, "the broker went down before the range was read"
    with sink.runtime() as runtime:
        ledger.check(
            "3. Kafka broker stopped mid-read, started 10 s later",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )


def on_first_submit(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[], None], *, before: bool
) -> list[float]:
    """Run ``action`` once, right before (or after) the sink submits its first batch."""
    real_submit = KustoIngestor.submit
    done: list[float] = []

    def submit(self: KustoIngestor, batch: BatchFile, target: IngestTarget) -> Receipt:
        first = not done
        done.append(time.monotonic())
        if first and before:
            action()
        receipt = real_submit(self, batch, target)
        if first and not before:
            action()
        return receipt

    monkeypatch.setattr(KustoIngestor, "submit", submit)
    return done


def test_azurite_stopped_mid_upload_and_started_again(
    fault_sink, ledger: Ledger, outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink: FaultSink = fault_sink(partitions=2)
    ledger.produce(sink.topics[0], ledger.events(400) + POISON, partitions=2)
    submitted = on_first_submit(monkeypatch, lambda: outage("azurite", 5), before=True)

    sink.deliver_all()

    assert submitted
    with sink.runtime() as runtime:
        ledger.check(
            "4. Azurite stopped mid-upload, started again 5 s later",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )


def deliver_with_kusto_faults(
    sink: FaultSink, monkeypatch: pytest.MonkeyPatch, inject: Callable[[], None]
) -> None:
    """Deliver everything, the faults injected once the first batch is queued (so they hit
    the sink's own requests, not the SDK's first fetch of its ingestion resources)."""
    with sink.runtime() as runtime:
        # The SDK waits a request's timeout plus 30 s; one second keeps a hang short.
        runtime.ingestor.request_timeout_s = 1.0
        on_first_submit(monkeypatch, inject, before=False)
        for rng in runtime.plan():
            runtime.deliver(rng)


def test_slow_kusto_throttling_for_30s(
    fault_sink, ledger: Ledger, faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow (~35 s): every management request answers 429 for 30 s."""
    sink: FaultSink = fault_sink(partitions=1, retry={"max_time_ms": 60_000, "backoff_ms": 500})
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)
    began = time.monotonic()

    deliver_with_kusto_faults(
        sink,
        monkeypatch,
        lambda: faults(kind="http", endpoint="mgmt", status=429, for_seconds=30),
    )

    assert time.monotonic() - began >= 30, "the sink waited out the throttling"
    with sink.runtime() as runtime:
        ledger.check(
            "5a. Kusto answering 429 for 30 s",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )


def test_slow_kusto_500s_then_a_request_hanging_past_its_timeout(
    fault_sink, ledger: Ledger, faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow (~35 s): three 500s, then a request the emulator holds past the timeout."""
    sink: FaultSink = fault_sink(partitions=1, retry={"max_time_ms": 60_000, "backoff_ms": 500})
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)

    def misbehave() -> None:
        faults(kind="http", endpoint="mgmt", status=500, count=3)
        faults(kind="http", endpoint="mgmt", status="hang", hang_seconds=45, count=1)

    deliver_with_kusto_faults(sink, monkeypatch, misbehave)

    with sink.runtime() as runtime:
        ledger.check(
            "5b. Kusto 500s, then a request hanging past its timeout",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )


def test_kusto_emulator_restarted_mid_ingestion(
    fault_sink, ledger: Ledger, faults, outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink: FaultSink = fault_sink(partitions=1)
    ledger.produce(sink.topics[0], ledger.events(300) + POISON)
    # Queued ingestions wait 3 s: the emulator goes down with batches in its queue.
    faults(kind="delay", seconds=3)
    real_submit = KustoIngestor.submit
    submitted: list[str] = []

    def submit_then_restart(self: KustoIngestor, batch: BatchFile, target: IngestTarget):
        receipt = real_submit(self, batch, target)
        submitted.append(batch.batch_id)
        if len(submitted) == 2:
            outage("kusto-emulator", 3)
        return receipt

    monkeypatch.setattr(KustoIngestor, "submit", submit_then_restart)
    sink.deliver_all()

    assert len(submitted) >= 2
    with sink.runtime() as runtime:
        ledger.check(
            "5c. Kusto emulator restarted mid-ingestion",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )
