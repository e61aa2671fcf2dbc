"""The Dagster job that delivers offset ranges: one mapped step per group of ranges.

(No `from __future__ import annotations` here: Dagster reads the op annotations.)

A run's config names its ranges explicitly; ``offset_ranges`` deals them into as many
groups as the run executes steps at once (``max_concurrent``: one in a run that delivers in
its own process), so every step reads its next range while the previous one waits for
Kusto (:meth:`SinkRuntime.deliver_all`). A retry ``FROM_FAILURE`` re-runs only the steps
that failed, and they skip the ranges they committed before failing. Then ``follow``
keeps delivering the run's partitions for up to ``follow_seconds`` (the sensors set it: see
:mod:`pipelines.follow`); without it (drains) the step is skipped, and no step process is
started for it.
"""

import re
from collections.abc import Callable
from typing import Any

import dagster as dg

from pipelines import metrics
from pipelines.config import SinkSettings
from pipelines.deliver import DeliveryReport
from pipelines.errors import SinkError
from pipelines.follow import FollowPolicy, follow
from pipelines.ingest import Receipt
from pipelines.plan import OffsetRange, PartitionState, TopicPartition
from pipelines.read import partition_states
from pipelines.runtime import SinkRuntime
from resources.sink import SinkResource

SINK_TAG = "kusto-sink/sink"
PARTITIONS_TAG = "kusto-sink/partitions"
# What a run does, in words, for the runs list: `ingest orders[2] 1000-2000`.
RANGE_TAG = "kusto-sink/range"
RUN_RETRIES = 3
# Ranges named in RANGE_TAG; a run of more says how many more.
NAMED_RANGES = 3


class RangeConfig(dg.Config):
    topic: str
    partition: int
    start: int
    end: int


class RangesConfig(dg.Config):
    ranges: list[RangeConfig]
    follow_seconds: float = 0.0
    # Steps the ranges are dealt into (at most one per range).
    steps: int = 1


def run_config(
    ranges: list[OffsetRange], *, follow_seconds: float = 0.0, max_concurrent: int = 1
) -> dict[str, object]:
    """The run config of a run delivering ``ranges`` in ``max_concurrent`` steps at once,
    then following their partitions for up to ``follow_seconds``."""
    listed = [
        {"topic": r.topic, "partition": r.partition, "start": r.start, "end": r.end} for r in ranges
    ]
    config: dict[str, object] = {"ranges": listed}
    if follow_seconds:
        config["follow_seconds"] = follow_seconds
    if max_concurrent > 1:
        config["steps"] = max_concurrent
    return {"ops": {"offset_ranges": {"config": config}}, **executor_config(max_concurrent)}


def deal(ranges: list[OffsetRange], steps: int) -> list[list[OffsetRange]]:
    """``ranges`` dealt into at most ``steps`` groups, a partition's ranges in one, in order
    (its commits follow each other)."""
    by_partition: dict[str, list[OffsetRange]] = {}
    for rng in ranges:
        by_partition.setdefault(rng.key, []).append(rng)
    groups: list[list[OffsetRange]] = [[] for _ in range(min(steps, len(by_partition)))]
    for i, partition_ranges in enumerate(by_partition.values()):
        groups[i % len(groups)] += partition_ranges
    return groups


def executor_config(max_concurrent: int) -> dict[str, object]:
    """Run config choosing how a run executes its steps, ``max_concurrent`` at a time.

    Measured (bench/NOTES.md; 200 k JSON records, 2 partitions, 2 busy cores): a run took
    34-38 s with a spawned process per step, 18-25 s with steps forked from a server that
    imported the sink once, 8-10 s in the run's own process: starting a step process costs
    more than a second core gives back, unless ranges are large.
    """
    if max_concurrent == 1:
        return {"execution": {"config": {"in_process": {}}}}
    # Step processes rebuild the job from the definitions module (drain's job_for and the
    # code location's defs both load it): preloaded, a fork finds it imported.
    start = {"forkserver": {"preload_modules": ["pipelines.definitions"]}}
    multiprocess = {"max_concurrent": max_concurrent, "start_method": start}
    return {"execution": {"config": {"multiprocess": multiprocess}}}


def run_tags(sink_name: str, ranges: list[OffsetRange]) -> dict[str, str]:
    return {
        SINK_TAG: sink_name,
        PARTITIONS_TAG: ",".join(sorted({r.key for r in ranges})),
        RANGE_TAG: describe_ranges("ingest", ranges),
        "dagster/max_retries": str(RUN_RETRIES),
        "dagster/retry_strategy": "FROM_FAILURE",
    }


def describe_ranges(verb: str, ranges: list[OffsetRange]) -> str:
    """``ingest orders[2] 1000-2000, orders[3] 0-500 (+4 more)``."""
    named = ", ".join(str(r) for r in ranges[:NAMED_RANGES])
    more = f" (+{len(ranges) - NAMED_RANGES} more)" if len(ranges) > NAMED_RANGES else ""
    return f"{verb} {named}{more}"


def kusto_asset_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["kusto", database, table])


def mapping_key(rng: OffsetRange, more: int = 0) -> str:
    """``orders_2_1000_2000``, or ``orders_2_1000_2000_and_3_more`` for a group of ranges."""
    key = f"{rng.topic}_{rng.partition}_{rng.start}_{rng.end}"
    if more:
        key += f"_and_{more}_more"
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


@dg.op(
    out={
        "ranges": dg.DynamicOut(list),
        # Only when the run follows: else the follow step is skipped.
        "follow_seconds": dg.Out(float, is_required=False),
    },
    description="Deal the run's offset ranges out to its steps",
)
def offset_ranges(config: RangesConfig):  # type: ignore[no-untyped-def]
    ranges = [OffsetRange(r.topic, r.partition, r.start, r.end) for r in config.ranges]
    for group in deal(ranges, config.steps):
        key = mapping_key(group[0], len(group) - 1)
        yield dg.DynamicOutput(group, output_name="ranges", mapping_key=key)
    if config.follow_seconds > 0:
        yield dg.Output(config.follow_seconds, output_name="follow_seconds")


def _batch_metadata(receipt: Receipt) -> dict[str, Any]:
    batch = receipt.batch
    return {
        "batch_id": batch.batch_id,
        "topic": batch.topic,
        "partition": batch.partition,
        "first_offset": batch.first_offset,
        "last_offset": batch.last_offset,
        "rows": batch.records,
        "raw_bytes": batch.raw_bytes,
        "file_bytes": batch.file_bytes,
        "format": batch.format,
        "table": f"{receipt.target.database}.{receipt.target.table}",
        "ingestion_mode": receipt.mode,
        "enqueue_seconds": round(receipt.enqueue_seconds, 3),
        "confirm_seconds": round(receipt.confirm_seconds or 0.0, 3),
    }


def retry_policy(settings: SinkSettings) -> dg.RetryPolicy:
    """One step retry, after errors.retry.backoff.time.ms.

    Transient errors are already retried inside the step for errors.retry.max.time.ms
    (pipelines.retry); a second attempt gives the step fresh clients, and then run retries
    (FROM_FAILURE) and the next sensor tick take over. More step retries would multiply
    the configured retry time.
    """
    return dg.RetryPolicy(
        max_retries=1,
        delay=settings.retry.backoff_ms / 1000,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


# What delivering one range came to: its reports (a backfill's range can take several
# runs of the sink's batches), or the error that stopped it.
Outcome = list[DeliveryReport] | SinkError


class _SomeFailed(Exception):
    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("some ranges failed")
        self.outcomes = outcomes


def run_delivery(
    context: dg.OpExecutionContext,
    sink: SinkResource,
    ranges: list[OffsetRange],
    deliver: Callable[[SinkRuntime], list[Outcome]],
    *,
    kind: str,
) -> list[DeliveryReport]:
    """Run one delivery attempt of ``ranges`` with the sink's clients and report each range:
    batches, counters, a log line. Live delivery and backfills differ only in ``deliver``,
    which returns an outcome per range.

    Errors become Dagster's once every range is reported: a transient one is retried by the
    step's policy; when all are terminal (a bad record under behavior.on.error=fail, a
    commit conflict) the step fails at once, since it would fail the same way again.
    """
    try:
        with sink.runtime() as runtime:
            outcomes = deliver(runtime)
            if any(isinstance(outcome, SinkError) for outcome in outcomes):
                # Leaving the block with an error drops the run's shared clients: the step's
                # retry starts on fresh ones.
                raise _SomeFailed(outcomes)
    except _SomeFailed as failed:
        outcomes = failed.outcomes
    except SinkError as error:
        outcomes = [error] * len(ranges)
    delivered: list[DeliveryReport] = []
    errors: list[SinkError] = []
    for rng, outcome in zip(ranges, outcomes, strict=True):
        if isinstance(outcome, SinkError):
            context.log_event(
                metrics.delivery_observation(rng, metrics.failed(), kind=kind, error=str(outcome))
            )
            errors.append(outcome)
            continue
        _report(context, rng, outcome, kind)
        delivered += outcome
    if errors:
        # One transient error is worth a retry of the step (the ranges it committed are
        # skipped then), even if another range's error would fail the same way again.
        transient = [error for error in errors if error.transient]
        if transient:
            raise transient[0]
        raise dg.Failure(str(errors[0]), allow_retries=False) from errors[0]
    return delivered


def _report(
    context: dg.OpExecutionContext, rng: OffsetRange, reports: list[DeliveryReport], kind: str
) -> None:
    counters = metrics.Counters()
    for report in reports:
        for receipt in report.receipts:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=kusto_asset_key(receipt.target.database, receipt.target.table),
                    description=f"batch {receipt.batch.batch_id}",
                    metadata={**_batch_metadata(receipt), "retries_used": context.retry_number},
                )
            )
        counters.add(metrics.succeeded(report, backfill=kind == "backfill"))
        context.log.info(
            f"{kind} {report.range}: {report.rows} rows in {len(report.receipts)} batch(es), "
            f"{report.dead_lettered} bad record(s), {report.tombstones_skipped} tombstone(s) "
            f"skipped, resumed at {report.resumed_at}, {report.seconds:.1f}s"
        )
    context.log_event(metrics.delivery_observation(rng, counters, kind=kind))


def _deliver_live(
    context: dg.OpExecutionContext, sink: SinkResource, ranges: list[OffsetRange]
) -> None:
    def deliver(runtime: SinkRuntime) -> list[Outcome]:
        return [o if isinstance(o, SinkError) else [o] for o in runtime.deliver_all(ranges)]

    run_delivery(context, sink, ranges, deliver, kind="live")


def build_deliver_op(settings: SinkSettings) -> dg.OpDefinition:
    @dg.op(
        name="deliver",
        description="Read a range, ingest its batches into Kusto, commit once confirmed",
        retry_policy=retry_policy(settings),
    )
    def deliver(context: dg.OpExecutionContext, sink: SinkResource, ranges: list) -> list:
        context.log.info(describe_ranges("ingest", ranges))
        _deliver_live(context, sink, ranges)
        return ranges

    return deliver


def build_follow_op(settings: SinkSettings) -> dg.OpDefinition:
    @dg.op(
        name="follow",
        description="Keep delivering the run's partitions while new records arrive",
        retry_policy=retry_policy(settings),
    )
    def follow_op(
        context: dg.OpExecutionContext,
        sink: SinkResource,
        delivered: list[list],
        follow_seconds: float,
    ) -> None:
        partitions = sorted({rng.topic_partition for group in delivered for rng in group})
        topics = sorted({tp.topic for tp in partitions})
        policy = FollowPolicy.of(sink.settings, follow_seconds, topics)

        with sink.runtime() as runtime:

            def states() -> dict[TopicPartition, PartitionState]:
                return partition_states(runtime.admin, sink.settings.group_id, topics)

            count = follow(
                partitions,
                policy,
                states=states,
                plan=runtime.plan,
                deliver=lambda rng: _deliver_live(context, sink, [rng]),
            )
        context.log.info(f"followed {len(partitions)} partition(s): {count} more range(s)")

    return follow_op


def build_job(settings: SinkSettings) -> dg.JobDefinition:
    deliver = build_deliver_op(settings)
    follow_partitions = build_follow_op(settings)

    @dg.job(
        name="deliver_ranges",
        description=f"Deliver Kafka offset ranges of sink {settings.name} into Kusto",
        tags={SINK_TAG: settings.name},
    )
    def deliver_ranges() -> None:
        ranges, follow_seconds = offset_ranges()
        follow_partitions(ranges.map(deliver).collect(), follow_seconds)

    return deliver_ranges
