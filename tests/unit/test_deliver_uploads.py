"""Uploads overlap reading: a batch goes to Kusto while the next records are read."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.batch import BatchFile
from pipelines.deliver import DeliveryOptions, Route, deliver_range
from pipelines.errors import IngestionFailed, KustoUnavailable
from pipelines.ingest import IngestTarget, Receipt
from pipelines.plan import OffsetRange
from pipelines.records import Chunk, DeadLetter, LineFraming
from pipelines.retry import RetryPolicy

TARGET = IngestTarget("db", "T", "json")
RANGE = OffsetRange("t", 0, 0, 40)
UPLOAD_S = 0.2
READ_S = 0.05


class Record:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


class Lines:
    def decode(self, records: Sequence[Record]) -> tuple[list[Chunk], list[DeadLetter]]:
        offsets = [r.offset() for r in records]
        return [Chunk("json", LineFraming(), offsets, [b"{}" * 50 for _ in offsets])], []


class SlowUploads:
    """Kusto behind a slow network: each upload takes UPLOAD_S; every batch lands at once."""

    poll_interval_s = 0.05
    confirm_timeout_s = 10.0

    def __init__(self, fail_at: int | None = None) -> None:
        self.uploads: list[tuple[str, float, float]] = []
        self.fail_at = fail_at

    def delivered_spans(self, target: IngestTarget, topic: str, partition: int) -> list[object]:
        return []

    def submit(self, batch: BatchFile, target: IngestTarget) -> Receipt:
        began = time.monotonic()
        if self.fail_at is not None and batch.first_offset >= self.fail_at:
            raise KustoUnavailable("storage unreachable")
        time.sleep(UPLOAD_S)
        self.uploads.append((batch.batch_id, began, time.monotonic()))
        return Receipt(batch, target, uuid.uuid4(), datetime.now(UTC), "queued", UPLOAD_S)

    def check(self, receipts: Sequence[Receipt]) -> list[tuple[Receipt, IngestionFailed]]:
        for receipt in receipts:
            receipt.confirmed = True
        return []


class Committed:
    def __init__(self) -> None:
        self.ranges: list[OffsetRange] = []

    def commit(self, rng: OffsetRange, dead_letters: Sequence[object] = ()) -> None:
        self.ranges.append(rng)


READS: list[tuple[float, float]] = []


def read_slowly(rng: OffsetRange) -> Iterator[list[Record]]:
    for first in range(rng.start, rng.end, 5):
        began = time.monotonic()
        time.sleep(READ_S)
        READS.append((began, time.monotonic()))
        yield [Record(o) for o in range(first, min(first + 5, rng.end))]


def deliver(ingestor: SlowUploads, committer: Committed, tmp_path: Path) -> None:
    READS.clear()
    deliver_range(
        RANGE,
        [Route(TARGET, Lines())],  # type: ignore[arg-type]
        read=read_slowly,  # type: ignore[arg-type]
        ingestor=ingestor,  # type: ignore[arg-type]
        committer=committer,
        options=DeliveryOptions(
            flush_size_bytes=1000,  # 10 records a batch: 4 batches
            retry=RetryPolicy(max_time_s=0.0, backoff_s=0.01),
            tempdir=tmp_path,
        ),
    )


def test_batches_upload_while_the_next_records_are_read(tmp_path: Path) -> None:
    ingestor, committer = SlowUploads(), Committed()

    deliver(ingestor, committer, tmp_path)

    ids = [batch_id for batch_id, *_ in ingestor.uploads]
    assert ids == ["t/0/0-9", "t/0/10-19", "t/0/20-29", "t/0/30-39"]
    assert committer.ranges == [RANGE]
    overlapping = [
        (read, upload)
        for read in READS
        for upload in ingestor.uploads
        if read[0] < upload[2] and upload[1] < read[1]
    ]
    assert overlapping, "every read waited for the uploads before it"


def test_a_failed_upload_stops_the_delivery_before_the_commit(tmp_path: Path) -> None:
    ingestor, committer = SlowUploads(fail_at=10), Committed()

    with pytest.raises(KustoUnavailable, match="storage unreachable"):
        deliver(ingestor, committer, tmp_path)

    assert committer.ranges == []
    assert list(tmp_path.rglob("*")) == [], "staging files are cleaned up"
