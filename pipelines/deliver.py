"""Deliver one offset range: read, decode, batch, ingest, confirm, commit.

This is the whole life of a range in plain Python; the Dagster op only calls it and
reports what it returns. The order of the steps is the exactly-once argument:

1. Ask Kusto which batches of this partition it already holds and resume after them.
2. Read ``[resume, end)``, decode per route, cut batches, submit them.
3. Wait until Kusto confirms every batch.
4. Commit ``end`` (with the range's dead letters, in one Kafka transaction), only if the
   group's committed offset is still where this range started.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pipelines.batch import BatchFile, BatchWriter
from pipelines.errors import DecodeError
from pipelines.ingest import IngestTarget, KustoIngestor, Receipt, resume_offset
from pipelines.plan import OffsetRange
from pipelines.records import Chunk, DeadLetter, KafkaRecord

log = logging.getLogger(__name__)

OnError = Literal["fail", "log", "ignore"]


class Decoder(Protocol):
    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]: ...


class Committer(Protocol):
    def commit(
        self, rng: OffsetRange, dead_letters: Sequence[tuple[str, DeadLetter]] = ()
    ) -> None: ...


@dataclass(frozen=True)
class Route:
    """One mapping of the range's topic: where its records go and how they are decoded."""

    target: IngestTarget
    decoder: Decoder
    # Set when the topic feeds several tables, so each table's batch ids differ.
    batch_suffix: str | None = None
    tombstones: Literal["skip", "dead_letter"] = "dead_letter"


@dataclass(frozen=True)
class DeliveryOptions:
    flush_size_bytes: int
    on_error: OnError = "fail"
    dead_letter_topic: str | None = None
    tempdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "kusto-sink")


@dataclass
class DeliveryReport:
    """What one range delivery did, for logs, asset metadata and metrics."""

    range: OffsetRange
    resumed_at: int
    records_read: int = 0
    dead_lettered: int = 0
    tombstones_skipped: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.batch.records for r in self.receipts)


def deliver_range(
    rng: OffsetRange,
    routes: Sequence[Route],
    *,
    read: Callable[[OffsetRange], Iterable[Sequence[KafkaRecord]]],
    ingestor: KustoIngestor,
    committer: Committer,
    options: DeliveryOptions,
) -> DeliveryReport:
    """Deliver ``rng`` to every route exactly once, then commit it.

    ``read`` yields lists of records of ``[start, end)`` in offset order (see
    :func:`pipelines.read.read_range`).
    """
    began = time.monotonic()
    resume = {
        route: resume_offset(
            ingestor.delivered_spans(route.target, rng.topic, rng.partition), rng.start
        )
        for route in routes
    }
    read_from = min(resume.values(), default=rng.end)
    report = DeliveryReport(range=rng, resumed_at=read_from)
    if read_from > rng.start:
        log.info("%s: Kusto already holds offsets %d-%d, resuming", rng, rng.start, read_from - 1)

    workdir = options.tempdir / f"{rng.topic}-{rng.partition}-{rng.start}"
    workdir.mkdir(parents=True, exist_ok=True)
    writers = {
        route: BatchWriter(
            workdir,
            topic=rng.topic,
            partition=rng.partition,
            range_start=resume[route],
            flush_size_bytes=options.flush_size_bytes,
            table=route.batch_suffix,
        )
        for route in routes
    }
    dead: dict[int, DeadLetter] = {}

    def submit(route: Route, batches: list[BatchFile]) -> None:
        for batch in batches:
            report.receipts.append(ingestor.submit(batch, route.target))
            batch.path.unlink(missing_ok=True)

    if read_from < rng.end:
        for records in read(OffsetRange(rng.topic, rng.partition, read_from, rng.end)):
            report.records_read += len(records)
            for route in routes:
                todo = _from_offset(records, resume[route])
                if not todo:
                    continue
                chunks, failures = route.decoder.decode(todo)
                for failure in failures:
                    _on_bad_record(failure, route, options, dead, report)
                for chunk in chunks:
                    submit(route, writers[route].add(chunk))
    for route in routes:
        submit(route, writers[route].finish(rng.end))

    ingestor.confirm(report.receipts)
    letters = [(options.dead_letter_topic, d) for d in dead.values() if options.dead_letter_topic]
    if len(letters) < len(dead):
        # Settings validation forbids this; a record must never end up nowhere.
        raise DecodeError(
            f"{len(dead)} bad record(s) in {rng} and no dead-letter topic is set",
            topic=rng.topic,
            partition=rng.partition,
            offset=min(dead),
        )
    committer.commit(rng, letters)
    report.dead_lettered = len(letters)
    report.seconds = time.monotonic() - began
    _cleanup(workdir)
    return report


def _from_offset(records: Sequence[KafkaRecord], offset: int) -> Sequence[KafkaRecord]:
    if not records or (records[0].offset() or 0) >= offset:
        return records
    return [r for r in records if (r.offset() or 0) >= offset]


def _on_bad_record(
    failure: DeadLetter,
    route: Route,
    options: DeliveryOptions,
    dead: dict[int, DeadLetter],
    report: DeliveryReport,
) -> None:
    record = failure.record
    where = f"topic={record.topic()} partition={record.partition()} offset={record.offset()}"
    if record.value() is None and route.tombstones == "skip":
        report.tombstones_skipped += 1
        return
    if options.on_error == "fail":
        raise DecodeError(
            f"{failure.error} (behavior.on.error=fail)",
            topic=record.topic(),
            partition=record.partition(),
            offset=record.offset(),
        ) from failure.error
    if options.on_error == "log":
        log.warning("%s: dead-lettering record: %s", where, failure.error)
    dead.setdefault(record.offset() or 0, failure)


def _cleanup(workdir: Path) -> None:
    for leftover in workdir.iterdir():
        leftover.unlink(missing_ok=True)
    workdir.rmdir()
