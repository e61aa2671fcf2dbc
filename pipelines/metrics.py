"""Counters comparable to the reference connector's metrics, per partition and in total.

Every delivery attempt (live or backfill, success or failure) records one asset observation
on its topic's ``kafka/<topic>`` asset, tagged ``event=delivery``, holding what that attempt
did. The Dagster event log is thus the counters' store: :func:`add_new_deliveries` folds the
observations after a storage id into running totals, which the status sensor keeps in its
cursor and ``kusto-sink status`` computes from the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import dagster as dg

from pipelines.deliver import DeliveryReport
from pipelines.plan import OffsetRange, TopicPartition

DELIVERY_EVENT = "delivery"
_PAGE = 1000


def kafka_asset_key(topic: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", topic])


@dataclass
class Counters:
    """What deliveries did. Names follow the reference's sink metrics."""

    # Rows handed to Kusto and confirmed there.
    records_written: int = 0
    # Records that could not be decoded or that Kusto refused (dead-lettered, or in a
    # backfill only counted).
    records_failed: int = 0
    # Records written to the dead-letter topic (backfills write none: the live sink did).
    dead_lettered: int = 0
    # Batches submitted, plus delivery attempts that failed before submitting.
    ingestion_attempts: int = 0
    ingestion_successes: int = 0
    ingestion_failures: int = 0
    # Records read from Kafka, tombstones skipped by a mapping's `tombstones: skip`, and
    # offset commits (one per live range delivered; backfills commit nothing).
    records_read: int = 0
    records_skipped: int = 0
    offset_commits: int = 0

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object]) -> Counters:
        def number(name: str) -> int:
            value = metadata.get(name)
            return int(str(getattr(value, "value", value) or 0))

        return cls(**{f.name: number(f.name) for f in fields(cls)})


def succeeded(report: DeliveryReport, *, backfill: bool) -> Counters:
    batches = len(report.receipts)
    failed_records = report.dead_lettered + report.misc_dead_lettered
    return Counters(
        records_written=report.rows,
        records_failed=failed_records,
        dead_lettered=0 if backfill else failed_records,
        ingestion_attempts=batches,
        ingestion_successes=batches,
        records_read=report.records_read,
        records_skipped=report.tombstones_skipped,
        offset_commits=0 if backfill else 1,
    )


def failed() -> Counters:
    return Counters(ingestion_attempts=1, ingestion_failures=1)


def delivery_observation(
    rng: OffsetRange, counters: Counters, *, kind: str, error: str | None = None
) -> dg.AssetObservation:
    """The event one delivery attempt of ``rng`` leaves on its topic's asset."""
    metadata: dict[str, Any] = {
        "event": DELIVERY_EVENT,
        "kind": kind,
        "partition": rng.partition,
        "offsets": f"{rng.start}-{rng.end}",
        **counters.as_dict(),
    }
    if error is not None:
        metadata["error"] = error
    return dg.AssetObservation(
        asset_key=kafka_asset_key(rng.topic),
        description=f"{kind} {rng}: {'failed' if error else 'delivered'}",
        metadata=metadata,
    )


@dataclass
class Totals:
    """Counters per partition, and where in the event log they were counted up to."""

    by_partition: dict[TopicPartition, Counters]
    storage_id: int = 0

    def of(self, tp: TopicPartition) -> Counters:
        return self.by_partition.get(tp) or Counters()

    def total(self, topic: str | None = None) -> Counters:
        total = Counters()
        for tp, counters in self.by_partition.items():
            if topic is None or tp.topic == topic:
                total.add(counters)
        return total

    def to_json(self) -> dict[str, object]:
        return {
            "storage_id": self.storage_id,
            "partitions": {
                f"{tp.topic}|{tp.partition}": c.as_dict() for tp, c in self.by_partition.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Totals:
        partitions = data.get("partitions") or {}
        assert isinstance(partitions, dict)
        by_partition = {}
        for key, counters in partitions.items():
            topic, _, partition = str(key).rpartition("|")
            by_partition[TopicPartition(topic, int(partition))] = Counters(**counters)
        return cls(by_partition, int(str(data.get("storage_id") or 0)))


def add_new_deliveries(instance: dg.DagsterInstance, topics: Iterable[str], totals: Totals) -> None:
    """Fold the delivery observations recorded after ``totals.storage_id`` into ``totals``."""
    newest = totals.storage_id
    for topic in topics:
        records_filter = dg.AssetRecordsFilter(
            asset_key=kafka_asset_key(topic), after_storage_id=totals.storage_id
        )
        cursor = None
        while True:
            page = instance.fetch_observations(
                records_filter, limit=_PAGE, cursor=cursor, ascending=True
            )
            for record in page.records:
                newest = max(newest, record.storage_id)
                observation = record.asset_observation
                if observation is None:
                    continue
                metadata = observation.metadata
                if _text(metadata.get("event")) != DELIVERY_EVENT:
                    continue
                tp = TopicPartition(topic, int(_text(metadata.get("partition")) or 0))
                totals.by_partition.setdefault(tp, Counters()).add(Counters.from_metadata(metadata))
            if not page.has_more:
                break
            cursor = page.cursor
    totals.storage_id = newest


def _text(value: object) -> str:
    return str(getattr(value, "value", value) or "")
