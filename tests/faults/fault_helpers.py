"""The fault matrix's ledger: where every produced record ended up, and the sink under test."""

from __future__ import annotations

import functools
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.kusto.data import KustoClient
from confluent_kafka import Consumer, IsolationLevel, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from e2e.e2e_helpers import event

from devstack.stack import StackConfig
from pipelines.commit import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER
from pipelines.config import load_settings
from pipelines.plan import OffsetRange
from pipelines.read import consumer_config, read_range
from pipelines.runtime import SinkRuntime

# Where each test appends its row of the matrix (fault, produced, in Kusto, ...), if set.
REPORT_ENV = "KUSTO_SINK_FAULT_REPORT"
# Short retries keep the matrix fast: 20 s of retries, 0.5 s first back-off.
RETRY = {"max_time_ms": 20_000, "backoff_ms": 500}

Location = tuple[str, int, int]  # topic, partition, offset

# Records the JSON decoder dead-letters: not JSON, not UTF-8, a tombstone.
POISON: list[tuple[bytes | None, int | None]] = [
    (b"{not json", None),
    (b'{"id": "\xff\xfe"}', None),
    (None, None),
]


@dataclass
class Ledger:
    """Every record a test produced, and where it ended up."""

    stack: StackConfig
    kusto: KustoClient
    db: str
    produced: dict[Location, int | None] = field(default_factory=dict)
    next_id: int = 0

    def ids(self, count: int) -> range:
        """``count`` row ids no other record of the test has."""
        self.next_id += count
        return range(self.next_id - count, self.next_id)

    def events(self, count: int) -> list[tuple[bytes, int]]:
        """``count`` good JSON events, each with a test-wide unique id."""
        return [(event(i), i) for i in self.ids(count)]

    def produce(
        self, topic: str, values: list[tuple[bytes | None, int | None]], partitions: int = 1
    ) -> None:
        """Produce ``(value, id)`` pairs (id None: a record that has no row in Kusto),
        round-robin over ``partitions``, and note where each one landed."""
        producer = Producer({"bootstrap.servers": self.stack.bootstrap_servers, "linger.ms": 5})
        failed: list[object] = []

        def delivered(row_id: int | None, error: object, message: Message) -> None:
            if error is not None:
                failed.append(error)
            location = (message.topic() or "", message.partition() or 0, message.offset() or 0)
            self.produced[location] = row_id

        for i, (value, row_id) in enumerate(values):
            producer.produce(
                topic,
                value=value,
                key=str(i).encode(),
                headers=[("trace", f"h{i}".encode())],
                partition=i % partitions,
                on_delivery=functools.partial(delivered, row_id),
            )
        assert producer.flush(30) == 0
        assert failed == []

    def _where(
        self, tables: list[str], dead_letter_topics: list[str], runtime: SinkRuntime
    ) -> tuple[Counter[Location], Counter[Location], dict[tuple[str, int], int]]:
        """Rows in Kusto and dead letters, by source location; committed offsets."""
        location_of = {row_id: loc for loc, row_id in self.produced.items() if row_id is not None}
        in_kusto: Counter[Location] = Counter()
        for table in tables:
            rows = self.kusto.execute_query(self.db, f"{table} | project id").primary_results[0]
            for row in rows:
                assert row["id"] in location_of, f"row id={row['id']} was never produced"
                in_kusto[location_of[row["id"]]] += 1
        in_dlq: Counter[Location] = Counter()
        for topic in dead_letter_topics:
            for letter in read_topic(self.stack, topic):
                headers = dict(letter.headers() or [])
                location = (
                    headers[SOURCE_TOPIC_HEADER].decode(),
                    int(headers[SOURCE_PARTITION_HEADER]),
                    int(headers[SOURCE_OFFSET_HEADER]),
                )
                assert location in self.produced, f"dead letter of {location} never produced"
                in_dlq[location] += 1
        committed = {
            (tp.topic, tp.partition): state.committed or 0
            for tp, state in runtime.partition_states().items()
        }
        return in_kusto, in_dlq, committed

    def check(
        self,
        fault: str,
        tables: list[str],
        dead_letter_topics: list[str],
        runtime: SinkRuntime,
        *,
        fully_committed: bool = True,
    ) -> dict[str, Any]:
        """The matrix row of this test; fails unless every record below the committed
        offsets is exactly once in Kusto or in a dead-letter topic, never both."""
        # A transaction's records become readable a little after its commit returns: the
        # coordinator writes the markers afterwards, and right after a broker restart the
        # dead-letter topic's high watermark was seen to lag the commit by ~4 s.
        deadline = time.monotonic() + 30
        while True:
            in_kusto, in_dlq, committed = self._where(tables, dead_letter_topics, runtime)
            done = [loc for loc in self.produced if loc[2] < committed.get(loc[:2], 0)]
            lost = [loc for loc in done if loc not in in_kusto and loc not in in_dlq]
            if not lost or time.monotonic() > deadline:
                break
            time.sleep(1)
        duplicated = sum(n - 1 for n in in_kusto.values()) + sum(n - 1 for n in in_dlq.values())
        duplicated += len(set(in_kusto) & set(in_dlq))
        row = {
            "fault": fault,
            "produced": len(self.produced),
            "in_kusto": len(in_kusto),
            "in_dlq": len(in_dlq),
            "lost": len(lost),
            "duplicated": duplicated,
            "uncommitted": len(self.produced) - len(done),
        }
        if path := os.environ.get(REPORT_ENV):
            with Path(path).open("a") as report:
                report.write(json.dumps(row) + "\n")
        assert lost == [], f"{fault}: lost {lost[:10]}"
        assert duplicated == 0, f"{fault}: duplicated {row}"
        if fully_committed:
            assert row["uncommitted"] == 0, f"{fault}: not everything committed: {row}"
        return row


def read_topic(stack: StackConfig, topic: str) -> list[Message]:
    """Every committed record of ``topic``, all partitions, once no transaction is open.

    A transaction's commit returns before the coordinator has written its markers, so a
    reader right after it may find the letters still pending: wait until the last stable
    offset reaches the high watermark.
    """
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    consumer = Consumer(
        consumer_config({"bootstrap.servers": stack.bootstrap_servers}, f"check-{time.time()}")
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        records: list[Message] = []
        for partition in sorted(metadata.topics[topic].partitions):
            tp = TopicPartition(topic, partition)
            deadline = time.monotonic() + 30
            while True:
                low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
                stable = (
                    admin.list_offsets(
                        {tp: OffsetSpec.latest()}, isolation_level=IsolationLevel.READ_COMMITTED
                    )[tp]
                    .result()
                    .offset
                )
                if stable >= high or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if high > low:
                for part in read_range(
                    consumer, OffsetRange(topic, partition, low, high), idle_timeout_s=10
                ):
                    records += part
        return records
    finally:
        consumer.close()


@dataclass
class FaultSink:
    """A sink over fresh topics, tables and dead-letter topics for one fault test."""

    path: Path
    topics: list[str]
    tables: list[str]
    dead_letter_topics: list[str]

    def runtime(self) -> SinkRuntime:
        return SinkRuntime(load_settings(self.path))

    def deliver_all(self) -> None:
        """Deliver every planned range as a fresh sink process's step would (all ranges in
        one go, the next read while the previous is confirmed); raises the first error."""
        with self.runtime() as runtime:
            for outcome in runtime.deliver_all(runtime.plan()):
                if isinstance(outcome, Exception):
                    raise outcome
