"""Deliver one offset range: read, decode, batch, ingest, confirm, commit.

This is the whole life of a range in plain Python; the Dagster op only calls it and
reports what it returns. The order of the steps is the exactly-once argument:

1. Ask Kusto which batches of this partition it already holds: cut new batches from the
   first offset not covered from the range's start on, and skip records it holds later.
2. Read ``[start, end)`` — from the start, so that bad records inside batches Kusto already
   holds are dead-lettered with this commit too — decode per route, cut batches, submit.
3. Settle the batches (:mod:`pipelines.settle`): wait until Kusto confirms each, submit
   transient failures again, split batches refused for their content.
4. Records Kusto refused go to the misc dead-letter topic, records that cannot be decoded
   to the dead-letter topic; letters for another cluster are written and flushed first.
5. Commit ``end`` (with the source cluster's dead letters, in one Kafka transaction), only
   if the group's committed offset is still where this range started.

Nothing is committed past a record that is neither confirmed in Kusto nor dead-lettered.
Transient errors are retried at each step (:mod:`pipelines.retry`); terminal ones stop.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import signal
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

from pipelines.batch import BatchFile, BatchWriter
from pipelines.dead_letter import DeadLetterTopic
from pipelines.errors import CommitConflict, DecodeError, IngestionFailed, TerminalError
from pipelines.ingest import IngestTarget, KustoIngestor, Receipt, resume_offset
from pipelines.plan import OffsetRange
from pipelines.records import Chunk, DeadLetter, KafkaRecord
from pipelines.retry import RetryPolicy
from pipelines.settle import Refusal, settle

log = logging.getLogger(__name__)

OnError = Literal["fail", "log", "ignore"]

# Test-only: the fault tests (tests/faults) set this to a crash point's name to make the
# process SIGKILL itself there, the way a lost machine would stop it. Unset in production.
CRASH_AT_ENV = "KUSTO_SINK_TEST_CRASH_AT"

# Completed batches waiting for the upload thread while reading goes on (see _Uploads).
UPLOADS_AHEAD = 2


class Decoder(Protocol):
    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]: ...


class Committer(Protocol):
    def commit(
        self, rng: OffsetRange, dead_letters: Sequence[tuple[str, DeadLetter]] = ()
    ) -> None: ...


Reader = Callable[[OffsetRange], Iterable[Sequence[KafkaRecord]]]


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
    dead_letters: DeadLetterTopic | None = None
    misc_dead_letters: DeadLetterTopic | None = None
    retry: RetryPolicy = RetryPolicy(max_time_s=0.0, backoff_s=1.0)
    tempdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "kusto-sink")


@dataclass
class DeliveryReport:
    """What one range delivery did, for logs, asset metadata and metrics."""

    range: OffsetRange
    resumed_at: int
    records_read: int = 0
    dead_lettered: int = 0
    misc_dead_lettered: int = 0
    tombstones_skipped: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.batch.records for r in self.receipts)


@dataclass(frozen=True)
class _Held:
    """Offsets of the partition that a route's table already holds, from its batch tags."""

    resume: int  # the first offset not covered from the range's start on
    later: list[tuple[int, int]]  # spans past ``resume`` (after a batch that was refused)

    @classmethod
    def from_spans(cls, spans: list[tuple[int, int]], start: int) -> _Held:
        resume = resume_offset(spans, start)
        return cls(resume, sorted((a, b) for a, b in spans if b >= resume))

    def pending(self, chunk: Chunk) -> Chunk:
        """The chunk without the records the table holds."""
        if chunk.offsets[0] >= self.resume and not self.later:
            return chunk
        keep = [i for i, o in enumerate(chunk.offsets) if o >= self.resume and not self._held(o)]
        if len(keep) == len(chunk.offsets):
            return chunk
        return Chunk(
            chunk.format,
            chunk.framing,
            [chunk.offsets[i] for i in keep],
            [chunk.payloads[i] for i in keep],
        )

    def _held(self, offset: int) -> bool:
        i = bisect.bisect_right(self.later, (offset, float("inf"))) - 1
        return i >= 0 and self.later[i][0] <= offset <= self.later[i][1]


def _part(chunk: Chunk, start: int, end: int | None) -> Chunk:
    if start == 0 and end is None:
        return chunk
    return Chunk(chunk.format, chunk.framing, chunk.offsets[start:end], chunk.payloads[start:end])


def deliver_range(
    rng: OffsetRange,
    routes: Sequence[Route],
    *,
    read: Reader,
    ingestor: KustoIngestor,
    committer: Committer,
    options: DeliveryOptions,
) -> DeliveryReport:
    """Deliver ``rng`` to every route exactly once, then commit it.

    ``read`` yields lists of records of ``[start, end)`` in offset order (see
    :func:`pipelines.read.read_range`).
    """
    return stage_range(rng, routes, read=read, ingestor=ingestor, options=options).finish(committer)


def stage_range(
    rng: OffsetRange,
    routes: Sequence[Route],
    *,
    read: Reader,
    ingestor: KustoIngestor,
    options: DeliveryOptions,
) -> StagedRange:
    """Steps 1 and 2 of :func:`deliver_range`: every batch of ``rng`` handed to Kusto.

    The rest (:meth:`StagedRange.finish`) is mostly waiting for Kusto, so a caller with
    several ranges can read the next one meanwhile.
    """
    began = time.monotonic()
    retry = options.retry
    held = {
        route: _Held.from_spans(
            retry.call(
                f"listing batches of {rng.key} in {route.target.database}.{route.target.table}",
                partial(ingestor.delivered_spans, route.target, rng.topic, rng.partition),
            ),
            rng.start,
        )
        for route in routes
    }
    report = DeliveryReport(
        range=rng, resumed_at=min((h.resume for h in held.values()), default=rng.end)
    )
    if report.resumed_at > rng.start:
        log.info("%s: Kusto already holds offsets %d-%d", rng, rng.start, report.resumed_at - 1)
    options.tempdir.mkdir(parents=True, exist_ok=True)
    # A directory of this attempt's own: a second sink started by mistake on the same range
    # and machine must not write into, or clean up, this one's files.
    workdir = Path(
        tempfile.mkdtemp(prefix=f"{rng.topic}-{rng.partition}-{rng.start}-", dir=options.tempdir)
    )
    delivery = _Delivery(rng, routes, held, read, ingestor, options, workdir, report)
    try:
        delivery.stage()
    except BaseException:
        _cleanup(workdir)
        raise
    return StagedRange(delivery, began)


class StagedRange:
    """A range whose batches Kusto has been handed; :meth:`finish` delivers it."""

    def __init__(self, delivery: _Delivery, began: float) -> None:
        self._delivery = delivery
        self._began = began

    @property
    def range(self) -> OffsetRange:
        return self._delivery.rng

    def finish(self, committer: Committer) -> DeliveryReport:
        """Steps 3-5: settle the batches, dead-letter what Kusto refused, commit."""
        delivery = self._delivery
        try:
            delivery.settle()
            _commit(delivery.rng, committer, delivery.letters(), delivery.options)
        finally:
            _cleanup(delivery.workdir)
        report = delivery.report
        report.dead_lettered = len(delivery.dead)
        report.misc_dead_lettered = len(delivery.misc)
        report.seconds = time.monotonic() - self._began
        return report


class _Delivery:
    """Steps 2-4 of one range: the state they share."""

    receipts: list[Receipt]

    def __init__(
        self,
        rng: OffsetRange,
        routes: Sequence[Route],
        held: dict[Route, _Held],
        read: Reader,
        ingestor: KustoIngestor,
        options: DeliveryOptions,
        workdir: Path,
        report: DeliveryReport,
    ) -> None:
        self.rng, self.routes, self.held, self.read = rng, routes, held, read
        self.ingestor, self.options, self.workdir, self.report = ingestor, options, workdir, report
        self.retry = options.retry
        self.route_of = {route.target: route for route in routes}
        self.dead: dict[int, DeadLetter] = {}
        self.misc: dict[int, DeadLetter] = {}
        self.refused: list[Refusal] = []  # batches streaming ingestion refused at once

    def stage(self) -> None:
        rng = self.rng
        with contextlib.ExitStack() as writing:
            # On a failure, each writer drops its open file and stops its worker thread,
            # and uploads not started yet are dropped.
            self.writing = writing
            self.uploads = _Uploads(self._submit)
            writing.callback(self.uploads.stop)
            self.writers = {
                route: self._writer(route, self.held[route].resume) for route in self.routes
            }
            # Spans the table holds past the resume point, still ahead of the reading.
            self.ahead = {route: list(self.held[route].later) for route in self.routes}
            for records in self.retry.read(self.read, rng):
                self.report.records_read += len(records)
                for route in self.routes:
                    chunks, failures = self._decode(route, records)
                    for failure in failures:
                        self._on_bad_record(failure, route)
                    for chunk in chunks:
                        chunk = self.held[route].pending(chunk)
                        if chunk.offsets:
                            self._add(route, chunk)
            for route in self.routes:
                self._cut_at_held_spans(route, before=rng.end)
                self.uploads.add(route, self.writers[route].finish(rng.end))
            self.receipts = self.uploads.wait()

    def settle(self) -> None:
        can_split = self.options.on_error != "fail" and self.options.misc_dead_letters
        confirmed, refused = settle(
            self.receipts,
            ingestor=self.ingestor,
            retry=self.retry,
            resubmit=lambda r: self._submit(self.route_of[r.target], [r.batch]),
            split=self._split if can_split else None,
        )
        self.report.receipts = confirmed
        for refusal in self.refused + refused:
            self._on_refusal(refusal)

    def _writer(self, route: Route, start: int) -> BatchWriter:
        return self.writing.enter_context(
            BatchWriter(
                self.workdir,
                topic=self.rng.topic,
                partition=self.rng.partition,
                range_start=start,
                flush_size_bytes=self.options.flush_size_bytes,
                table=route.batch_suffix,
            )
        )

    def _add(self, route: Route, chunk: Chunk) -> None:
        """Write a chunk, cutting batches where the table holds a span already.

        A replay must cut the batches of an earlier attempt exactly as it did: a batch that
        attempt submitted but Kusto had not confirmed yet ends where the next held span
        begins, so it gets the same id again and ingestIfNotExists drops a late twin.
        """
        offsets, writers = chunk.offsets, self.writers
        start = 0
        while self.ahead[route] and offsets[-1] > self.ahead[route][0][1]:
            first, _ = self.ahead[route][0]
            cut = bisect.bisect_left(offsets, first, lo=start)
            if cut > start:
                self.uploads.add(route, writers[route].add(_part(chunk, start, cut)))
            self._cut_at_held_spans(route, before=offsets[cut])
            start = cut
        if start < len(offsets):
            self.uploads.add(route, writers[route].add(_part(chunk, start, None)))

    def _cut_at_held_spans(self, route: Route, *, before: int) -> None:
        """Close the batch before each held span that ends before ``before``; the next
        writer starts after the span."""
        while self.ahead[route] and self.ahead[route][0][1] < before:
            first, last = self.ahead[route].pop(0)
            self.uploads.add(route, self.writers[route].finish(first))
            self.writers[route] = self._writer(route, last + 1)

    def letters(self) -> list[tuple[DeadLetterTopic | None, list[DeadLetter]]]:
        return [
            (self.options.dead_letters, list(self.dead.values())),
            (self.options.misc_dead_letters, list(self.misc.values())),
        ]

    def _decode(
        self, route: Route, records: Sequence[KafkaRecord]
    ) -> tuple[list[Chunk], list[DeadLetter]]:
        # The schema registry may be briefly unreachable: a transient error, retried.
        return self.retry.call(f"decoding {self.rng.key}", lambda: route.decoder.decode(records))

    def _submit(self, route: Route, batches: list[BatchFile]) -> list[Receipt]:
        receipts = []
        for batch in batches:
            try:
                receipts.append(
                    self.retry.call(
                        f"submitting batch {batch.batch_id}",
                        partial(self.ingestor.submit, batch, route.target),
                    )
                )
            except IngestionFailed as error:
                if error.transient or not route.target.streaming:
                    raise
                # Streaming answers at once: Kusto refused the batch before queueing it.
                now = datetime.now(UTC)
                receipt = Receipt(batch, route.target, uuid.uuid4(), now, "streaming", 0.0)
                self.refused.append(Refusal(receipt, error))
            crash_point("after_first_submit")
        return receipts

    def _on_bad_record(self, failure: DeadLetter, route: Route) -> None:
        record = failure.record
        if record.value() is None and route.tombstones == "skip":
            self.report.tombstones_skipped += 1
            return
        if self.options.on_error == "fail":
            raise DecodeError(
                f"{failure.error} (behavior.on.error=fail)",
                topic=record.topic(),
                partition=record.partition(),
                offset=record.offset(),
            ) from failure.error
        if self.options.dead_letters is None:
            # Settings validation forbids this; a record must never end up nowhere.
            raise DecodeError(
                f"{failure.error}: no dead-letter topic is set",
                topic=record.topic(),
                partition=record.partition(),
                offset=record.offset(),
            ) from failure.error
        if self.options.on_error == "log":
            log.warning(
                "topic=%s partition=%s offset=%s: dead-lettering record: %s",
                record.topic(),
                record.partition(),
                record.offset(),
                failure.error,
            )
        self.dead.setdefault(record.offset() or 0, failure)

    def _on_refusal(self, refusal: Refusal) -> None:
        error, batch = refusal.error, refusal.receipt.batch
        if self.options.on_error == "fail" or self.options.misc_dead_letters is None:
            why = (
                "behavior.on.error=fail"
                if self.options.on_error == "fail"
                else "no misc dead-letter topic is set"
            )
            if error.transient:
                raise error
            raise IngestionFailed(
                f"{error} ({why}; offsets {batch.first_offset}-{batch.last_offset} stay "
                "uncommitted)",
                permanent=True,
                error_code=error.error_code,
            ) from error
        records, chunks = self._batch_records(self.route_of[refusal.receipt.target], batch)
        for offset in (o for chunk in chunks for o in chunk.offsets):
            if self.options.on_error == "log":
                log.warning(
                    "topic=%s partition=%d offset=%d: Kusto refused the record, "
                    "dead-lettering it: %s",
                    self.rng.topic,
                    self.rng.partition,
                    offset,
                    error,
                )
            self.misc.setdefault(offset, DeadLetter(records[offset], error))

    def _batch_records(
        self, route: Route, batch: BatchFile
    ) -> tuple[dict[int, KafkaRecord], list[Chunk]]:
        """A batch's records read again, and its chunks as they were cut."""
        span = OffsetRange(
            self.rng.topic, self.rng.partition, batch.first_offset, batch.last_offset + 1
        )
        records: dict[int, KafkaRecord] = {}
        chunks: list[Chunk] = []
        for part in self.retry.read(self.read, span):
            records.update((r.offset() or 0, r) for r in part)
            decoded, _ = self._decode(route, part)
            chunks += [self.held[route].pending(c) for c in decoded]
        return records, [c for c in chunks if c.offsets]

    def _split(self, receipt: Receipt) -> list[Receipt]:
        """Submit the two halves of a batch Kusto refused for its content."""
        route, batch = self.route_of[receipt.target], receipt.batch
        _, chunks = self._batch_records(route, batch)
        offsets = [o for chunk in chunks for o in chunk.offsets]
        middle = offsets[len(offsets) // 2 - 1]
        halves: list[BatchFile] = []
        for first, last in ((batch.first_offset, middle), (middle + 1, batch.last_offset)):
            with BatchWriter(
                self.workdir,
                topic=self.rng.topic,
                partition=self.rng.partition,
                range_start=first,
                # The half of a batch fits in one file: no cut by size.
                flush_size_bytes=batch.raw_bytes + 1,
                table=route.batch_suffix,
            ) as writer:
                for chunk in chunks:
                    keep = [i for i, o in enumerate(chunk.offsets) if first <= o <= last]
                    if keep:
                        halves += writer.add(
                            Chunk(
                                chunk.format,
                                chunk.framing,
                                [chunk.offsets[i] for i in keep],
                                [chunk.payloads[i] for i in keep],
                            )
                        )
                halves += writer.finish(last + 1)
        return self._submit(route, halves)


class _Uploads:
    """Batches handed to Kusto on a thread of their own while the next ones are read.

    An upload is mostly waiting on the network, and the reading thread has records to
    consume and check meanwhile. At most :data:`UPLOADS_AHEAD` batches wait for the
    thread; adding another waits for the oldest, so finished files never pile up on disk
    or in memory. Receipts come back in the order the batches were completed.
    """

    def __init__(self, submit: Callable[[Route, list[BatchFile]], list[Receipt]]) -> None:
        self._submit = submit
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="kusto-upload")
        self._pending: deque[Future[list[Receipt]]] = deque()
        self._receipts: list[Receipt] = []

    def add(self, route: Route, batches: list[BatchFile]) -> None:
        for batch in batches:
            self._pending.append(self._thread.submit(self._submit, route, [batch]))
            while len(self._pending) > UPLOADS_AHEAD:
                # Also where a failed upload surfaces, ending the reading.
                self._receipts += self._pending.popleft().result()

    def wait(self) -> list[Receipt]:
        """Every receipt, once all uploads are done; raises the first upload's error."""
        while self._pending:
            self._receipts += self._pending.popleft().result()
        return self._receipts

    def stop(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)


def _commit(
    rng: OffsetRange,
    committer: Committer,
    letters: list[tuple[DeadLetterTopic | None, list[DeadLetter]]],
    options: DeliveryOptions,
) -> None:
    in_transaction: list[tuple[str, DeadLetter]] = []
    for target, found in letters:
        if not found:
            continue
        if target is None:
            raise TerminalError(f"{len(found)} dead letter(s) of {rng} have no topic to go to")
        if target.writer is not None:
            options.retry.call(
                f"writing dead letters of {rng} to topic {target.topic}",
                partial(target.writer.write, rng, found),
            )
        else:
            in_transaction += [(target.topic, letter) for letter in found]
    crash_point("before_commit")
    attempts = 0

    def commit() -> None:
        nonlocal attempts
        attempts += 1
        try:
            committer.commit(rng, in_transaction)
        except CommitConflict as conflict:
            if attempts > 1 and conflict.committed == rng.end:
                # An earlier attempt's commit went through but its answer was lost.
                log.info("%s: committed by the earlier attempt", rng)
                return
            raise

    options.retry.call(f"committing {rng}", commit)


def crash_point(name: str) -> None:
    """Test-only: the fault tests SIGKILL the process at the point named by $CRASH_AT_ENV."""
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _cleanup(workdir: Path) -> None:
    for leftover in workdir.iterdir():
        leftover.unlink(missing_ok=True)
    workdir.rmdir()
