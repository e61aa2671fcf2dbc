"""Settling batches: how soon a confirmation is seen, and how often Kusto is asked."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.batch import BatchFile
from pipelines.errors import IngestionFailed
from pipelines.ingest import IngestTarget, Receipt
from pipelines.retry import RetryPolicy
from pipelines.settle import settle

TARGET = IngestTarget("db", "T", "json")


def receipt(first: int) -> Receipt:
    batch = BatchFile(
        Path(f"/tmp/b{first}.json.gz"), f"t/0/{first}-{first + 9}", "t", 0, first, first + 9,
        10, 100, 50, "json", True,
    )  # fmt: skip
    return Receipt(batch, TARGET, uuid.uuid4(), datetime.now(UTC), "queued", 0.01)


class LandsAfter:
    """An ingestor whose Kusto holds every batch ``seconds`` after the first check."""

    poll_interval_s = 1.0
    confirm_timeout_s = 30.0

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.checks = 0
        self.first_check: float | None = None

    def check(self, receipts: Sequence[Receipt]) -> list[tuple[Receipt, IngestionFailed]]:
        self.checks += 1
        now = time.monotonic()
        self.first_check = self.first_check or now
        if now - self.first_check >= self.seconds:
            for r in receipts:
                r.confirmed = True
        return []


def run(ingestor: LandsAfter, receipts: list[Receipt]) -> list[Receipt]:
    confirmed, refused = settle(
        receipts,
        ingestor=ingestor,  # type: ignore[arg-type]
        retry=RetryPolicy(max_time_s=0.0, backoff_s=0.1),
        resubmit=lambda r: [r],
    )
    assert refused == []
    return confirmed


def test_a_batch_landing_fast_is_confirmed_without_waiting_a_poll_interval() -> None:
    ingestor = LandsAfter(0.2)
    began = time.monotonic()

    confirmed = run(ingestor, [receipt(0), receipt(10)])

    assert len(confirmed) == 2
    assert time.monotonic() - began < 0.6


def test_a_long_wait_backs_off_to_the_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    ingestor = LandsAfter(20.0)
    clock = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", sleep)

    run(ingestor, [receipt(0)])

    assert pauses[0] < 0.2
    assert pauses == sorted(pauses) and max(pauses) == ingestor.poll_interval_s
    assert ingestor.checks < 35, "a 20 s wait polled about once a second at most"
