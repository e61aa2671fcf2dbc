"""Backfills: read a chosen offset or time range again into the configured table or another.

A backfill never touches the sink's consumer group: its ranges are delivered with a
committer that commits nothing, so the live sink goes on from where it was.

Idempotence rests on the same batch tags as live delivery. Before loading a range into a
table, the backfill asks that table which batches of the partition it holds and delivers
only the gaps between them, each gap cut into batches from its own start. Batches the live
sink cut elsewhere (another flush size, another range start) are therefore never loaded
twice, and a gap left by a dropped extent is filled with the batch ids the live sink would
have used for it, when the flush size is the same.

``replace`` ("fix the mapping and reload") swaps the batches overlapping the range for new
ones, and no interruption at any point may lose a record. Dropping the old batches first
loses one: the range grows to the old batches' bounds, and once they are gone nothing
remembers how far, so a re-plan reloads only the range asked for. Instead:

1. plan: the range grows to the bounds of every batch overlapping it, old or *retired*
   (below), until no batch overlaps it in part; nothing changes yet;
2. retire: the overlapping batches lose their ``ingest-by`` tag and keep ``drop-by``. Their
   rows stay, but Kusto no longer counts them as held, so ``ingestIfNotExists`` lets the
   same batch ids load again. A retired extent (``drop-by:<id>`` without ``ingest-by:<id>``)
   is the durable record, in Kusto itself, of offsets still to reload;
3. reload: each chunk loads what no held batch covers, as any backfill does;
4. drop: after its batches are confirmed, each chunk drops the retired extents that held
   batches now cover whole (a retired batch across two chunks goes once both have loaded).

Interrupted anywhere, the table holds every record, some twice between 3 and 4; running the
same replace again widens over the retired extents, reloads and drops them. Any backfill of
the partition into that table (step 4 is part of every chunk) also clears retired extents
its batches cover. On a real cluster, ``.replace extents`` from a staging table would swap
the batches atomically, without the duplicate window; the local emulator has no such command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipelines.config import DeadLetterSettings
from pipelines.dead_letter import DeadLetterTopic
from pipelines.deliver import DeliveryOptions, DeliveryReport, Route, crash_point, deliver_range
from pipelines.errors import ConfigError
from pipelines.extents import BatchExtent, batch_extents, drop_extents
from pipelines.ingest import IngestTarget, kusto_errors
from pipelines.plan import OffsetRange, PartitionState, TopicPartition
from pipelines.read import kafka_error, partition_states, read_range
from pipelines.records import DeadLetter
from pipelines.retry import RetryPolicy
from pipelines.runtime import SinkRuntime

log = logging.getLogger(__name__)

Position = int | datetime


def parse_position(text: str) -> Position:
    """``1000`` (an offset) or an ISO 8601 time (UTC unless it names its zone)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither an offset nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackfillRequest:
    """What to read again: ``[start, end)`` of some partitions of a topic, into a table.

    ``end`` of ``None`` is the high watermark when the backfill is planned; ``partitions``
    of ``None`` every partition; ``table`` of ``None`` the topic's configured table(s), else
    ``Table`` or ``db.Table`` (the database defaults to the mapping's).
    """

    topic: str
    start: Position
    end: Position | None = None
    partitions: tuple[int, ...] | None = None
    table: str | None = None
    replace: bool = False

    def describe(self) -> str:
        parts = "all" if self.partitions is None else ",".join(map(str, self.partitions))
        end = "end" if self.end is None else _show(self.end)
        into = f" into {self.table}" if self.table else ""
        return f"{self.topic}[{parts}] {_show(self.start)} to {end}{into}"


@dataclass
class BackfillPlan:
    """The chunks to deliver, and the batches ``replace`` retired for them to replace."""

    ranges: list[OffsetRange]
    replaced_batches: list[str] = field(default_factory=list)

    @property
    def offsets(self) -> int:
        return sum(r.records for r in self.ranges)


class NoCommit:
    """A committer for backfills: the live sink's group offsets stay where they are.

    Dead letters are not written again either: the live sink wrote them when it first
    read the range (the delivery report still counts them).
    """

    def commit(self, rng: OffsetRange, dead_letters: Sequence[tuple[str, DeadLetter]] = ()) -> None:
        log.debug(
            "%s: backfill, no commit; %d dead letter(s) not rewritten", rng, len(dead_letters)
        )


def routes_for(runtime: SinkRuntime, topic: str, table: str | None) -> list[Route]:
    """The topic's routes, or its one route pointed at ``table`` (``T`` or ``db.T``)."""
    routes = runtime.routes(topic)
    if not routes:
        raise ConfigError(f"topic {topic} has no mapping in sink {runtime.settings.name}")
    if table is None:
        return routes
    if len(routes) > 1:
        tables = ", ".join(f"{r.target.database}.{r.target.table}" for r in routes)
        raise ConfigError(
            f"topic {topic} feeds several tables ({tables}); a backfill into another table "
            "needs a topic with one mapping",
            setting="table",
        )
    (route,) = routes
    database, _, name = table.rpartition(".")
    target = replace(route.target, database=database or route.target.database, table=name)
    return [replace(route, target=target)]


def plan_backfill(runtime: SinkRuntime, request: BackfillRequest) -> BackfillPlan:
    """Resolve times to offsets, clip to what the log holds (and, into the live table, to
    what the live sink has committed), apply ``replace``, chunk.

    Chunks are at most ``max_range_records`` long, like the live sink's ranges, so each
    is one run or one step that can be retried on its own.
    """
    states = partition_states(runtime.admin, runtime.settings.group_id, [request.topic])
    wanted = _partitions(request, states)
    starts = _offsets(runtime.consumer, request.topic, wanted, request.start, states)
    ends = (
        {p: states[TopicPartition(request.topic, p)].high for p in wanted}
        if request.end is None
        else _offsets(runtime.consumer, request.topic, wanted, request.end, states)
    )
    live = {route.target for route in runtime.routes(request.topic)}
    chosen = {route.target for route in routes_for(runtime, request.topic, request.table)}
    if chosen & live:
        # Into a table the live sink writes (named or not): leave its uncommitted offsets to it.
        ends = _below_live_sink(runtime, request.topic, ends, states)
    ranges = [
        OffsetRange(request.topic, p, starts[p], ends[p]) for p in wanted if starts[p] < ends[p]
    ]
    plan = BackfillPlan([])
    if request.replace:
        if runtime.settings.delivery != "exactly_once":
            raise ConfigError(
                f"replace needs delivery exactly_once: sink {runtime.settings.name} tags no "
                "batch, so Kusto cannot tell which extents hold the range",
                setting="delivery",
            )
        for route in routes_for(runtime, request.topic, request.table):
            ranges, retired = _retire_overlapping(runtime, route.target, ranges)
            plan.replaced_batches += retired
    plan.ranges = split(ranges, runtime.settings.max_range_records)
    return plan


def split(ranges: Iterable[OffsetRange], max_records: int) -> list[OffsetRange]:
    """Cut each range into pieces of at most ``max_records`` offsets, from its start."""
    return [
        OffsetRange(r.topic, r.partition, s, min(s + max_records, r.end))
        for r in ranges
        for s in range(r.start, r.end, max_records)
    ]


def missing_spans(held: Iterable[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` outside every held span (inclusive ``(first, last)``).

    Pure. ``[(0, 99), (200, 299)]`` held and ``[50, 400)`` wanted leave ``[(100, 200),
    (300, 400)]``, half-open like offset ranges.
    """
    gaps: list[tuple[int, int]] = []
    position = start
    for first, last in sorted(held):
        if last < position:
            continue
        if first >= end:
            break
        if first > position:
            gaps.append((position, first))
        position = max(position, last + 1)
    if position < end:
        gaps.append((position, end))
    return gaps


def widen(spans: Iterable[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` grown until no span (inclusive ``(first, last)``) overlaps it in part.

    Pure. Spans cut differently may overlap each other, so one pass is not enough:
    ``[(0, 99), (90, 199)]`` widen ``[95, 96)`` to ``[0, 200)``.
    """
    spans = sorted(spans)
    grown = True
    while grown:
        grown = False
        for first, last in spans:
            if last >= start and first < end and (first < start or last >= end):
                start, end, grown = min(start, first), max(end, last + 1), True
    return start, end


def backfill_range(
    runtime: SinkRuntime, rng: OffsetRange, table: str | None = None
) -> list[DeliveryReport]:
    """Deliver the offsets of ``rng`` that the target table(s) do not hold; commit nothing."""
    settings = runtime.settings
    reports = []
    for route in routes_for(runtime, rng.topic, table):
        target = route.target
        held = [
            (e.first_offset, e.last_offset)
            for e in batch_extents(
                runtime.query_client, target.database, target.table, rng.topic, rng.partition
            )
        ]
        gaps = missing_spans(held, rng.start, rng.end)
        skipped = rng.records - sum(end - start for start, end in gaps)
        if skipped:
            log.info(
                "%s: %s.%s already holds %d of its offsets; loading %d gap(s)",
                rng,
                target.database,
                target.table,
                skipped,
                len(gaps),
            )
        options = DeliveryOptions(
            flush_size_bytes=settings.flush_size_bytes,
            on_error=settings.behavior_on_error,
            # Letters named here go to the committer, which writes none (see NoCommit).
            dead_letters=_letters_to(settings.dead_letter),
            misc_dead_letters=_letters_to(settings.misc_dead_letter),
            retry=RetryPolicy.from_settings(settings.retry),
            # Apart from the live sink's staging files, which may start at the same offsets.
            tempdir=settings.tempdir / "backfill" / f"{target.database}.{target.table}",
        )
        for start, end in gaps:
            reports.append(
                deliver_range(
                    OffsetRange(rng.topic, rng.partition, start, end),
                    [route],
                    read=lambda r: read_range(runtime.consumer, r),
                    ingestor=runtime.ingestor,
                    committer=NoCommit(),
                    options=options,
                )
            )
        if settings.delivery == "exactly_once":
            _drop_covered_retired(runtime, target, rng.topic, rng.partition)
    return reports


def _letters_to(settings: DeadLetterSettings | None) -> DeadLetterTopic | None:
    return DeadLetterTopic(settings.topic) if settings is not None else None


def _retire_overlapping(
    runtime: SinkRuntime, target: IngestTarget, ranges: list[OffsetRange]
) -> tuple[list[OffsetRange], list[str]]:
    """Retire the batches overlapping ``ranges`` in ``target``; the ranges widened to them
    and to retired batches an interrupted replace left (see the module docstring)."""
    widened, retired = [], []
    for rng in ranges:
        held = batch_extents(
            runtime.query_client, target.database, target.table, rng.topic, rng.partition
        )
        left = _retired_extents(runtime, target, rng.topic, rng.partition)
        spans = [(e.first_offset, e.last_offset) for e in [*held, *left]]
        start, end = widen(spans, rng.start, rng.end)
        if (start, end) != (rng.start, rng.end):
            log.info("%s: replacing whole batches, so the range grows to %d-%d", rng, start, end)
        overlapping = sorted(
            {e.batch_id for e in held if e.last_offset >= start and e.first_offset < end}
        )
        _retire(runtime, target, overlapping)
        retired += overlapping
        widened.append(OffsetRange(rng.topic, rng.partition, start, end))
    log.info("retired %d batch(es) of %s.%s", len(retired), target.database, target.table)
    return widened, retired


def _retired_extents(
    runtime: SinkRuntime, target: IngestTarget, topic: str, partition: int
) -> list[BatchExtent]:
    """Extents of the partition tagged ``drop-by:<id>`` but no longer ``ingest-by:<id>``."""
    prefix = f"drop-by:{topic}/{partition}/"
    escaped = prefix.replace("\\", "\\\\").replace("'", "\\'")
    command = f".show table ['{target.table}'] extents where tags contains '{escaped}'"
    with kusto_errors(f"listing extents of {target.database}.{target.table}"):
        response = runtime.query_client.execute_mgmt(target.database, command)
    found = []
    for row in response.primary_results[0]:
        tags = str(row["Tags"] or "").split("\r\n")
        for tag in tags:
            batch_id = tag.removeprefix("drop-by:")
            if not tag.startswith(prefix) or f"ingest-by:{batch_id}" in tags:
                continue
            # `topic/partition/first-last`, maybe `@db.T` after it; topics hold no `/`.
            first, _, last = batch_id.split("@")[0].rpartition("/")[2].partition("-")
            found.append(
                BatchExtent(
                    extent_id=str(row["ExtentId"]),
                    batch_id=batch_id,
                    topic=topic,
                    partition=partition,
                    first_offset=int(first),
                    last_offset=int(last),
                    rows=int(row["RowCount"] or 0),
                )
            )
    return found


def _retire(runtime: SinkRuntime, target: IngestTarget, batch_ids: Sequence[str]) -> None:
    """Take the ``ingest-by`` tags off these batches' extents; their ``drop-by`` tags stay."""
    if not batch_ids:
        return
    tags = ", ".join("'" + f"ingest-by:{b}".replace("'", "\\'") + "'" for b in batch_ids)
    command = f".drop extent tags from table ['{target.table}'] ({tags})"
    with kusto_errors(f"retiring {len(batch_ids)} batch(es) of {target.database}.{target.table}"):
        runtime.query_client.execute_mgmt(target.database, command)


def _drop_covered_retired(
    runtime: SinkRuntime, target: IngestTarget, topic: str, partition: int
) -> None:
    """Drop the retired extents whose every offset a held batch now covers."""
    retired = _retired_extents(runtime, target, topic, partition)
    if not retired:
        return
    held = [
        (e.first_offset, e.last_offset)
        for e in batch_extents(
            runtime.query_client, target.database, target.table, topic, partition
        )
    ]
    covered = [e for e in retired if not missing_spans(held, e.first_offset, e.last_offset + 1)]
    if not covered:
        return
    crash_point("backfill_before_drop")
    dropped = drop_extents(runtime.query_client, target.database, target.table, covered)
    log.info(
        "topic=%s partition=%d: dropped %d replaced extent(s) of %s.%s",
        topic,
        partition,
        dropped,
        target.database,
        target.table,
    )


def _below_live_sink(
    runtime: SinkRuntime,
    topic: str,
    ends: dict[int, int],
    states: dict[TopicPartition, PartitionState],
) -> dict[int, int]:
    """Ends cut at where the live sink reads next: into the live table, offsets it has not
    committed are its own to deliver, and a backfill racing it could load them twice."""
    reset = runtime.settings.kafka.auto_offset_reset
    cut = {}
    for partition, end in ends.items():
        live = states[TopicPartition(topic, partition)].start(reset)
        if end > live:
            log.info(
                "topic=%s partition=%d: backfill into the live table stops at the sink's "
                "next offset %d, not %d",
                topic,
                partition,
                live,
                end,
            )
        cut[partition] = min(end, live)
    return cut


def _partitions(
    request: BackfillRequest, states: dict[TopicPartition, PartitionState]
) -> list[int]:
    existing = sorted(tp.partition for tp in states if tp.topic == request.topic)
    if request.partitions is None:
        return existing
    unknown = sorted(set(request.partitions) - set(existing))
    if unknown:
        raise ConfigError(
            f"topic {request.topic} has partitions {existing}, not {unknown}",
            setting="partitions",
        )
    return sorted(set(request.partitions))


def _offsets(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    position: Position,
    states: dict[TopicPartition, PartitionState],
) -> dict[int, int]:
    """Each partition's offset for ``position``, within what the log holds.

    A time becomes the first offset whose record time is at or after it
    (``offsets_for_times``); none such means the high watermark.
    """
    bounds = {p: states[TopicPartition(topic, p)] for p in partitions}
    if isinstance(position, int):
        found = {p: position for p in partitions}
    else:
        millis = int(position.timestamp() * 1000)
        asked = [KafkaTopicPartition(topic, p, millis) for p in partitions]
        doing = f"looking up offsets for time {position.isoformat()}"
        try:
            answers = consumer.offsets_for_times(asked, timeout=10)
        except KafkaException as error:
            raise kafka_error(error.args[0], doing, topic, None) from error
        found = {}
        for answer in answers:
            if answer.error is not None:
                raise kafka_error(answer.error, doing, topic, answer.partition)
            # -1: no record at or after that time, so the range ends at the log's end.
            found[answer.partition] = (
                answer.offset if answer.offset >= 0 else bounds[answer.partition].high
            )
    return {p: min(max(found[p], bounds[p].low), bounds[p].high) for p in partitions}


def _show(position: Position) -> str:
    return str(position) if isinstance(position, int) else position.isoformat()
