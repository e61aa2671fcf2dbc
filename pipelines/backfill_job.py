"""The Dagster job that backfills: plan a request, then one mapped step per chunk.

(No `from __future__ import annotations` here: Dagster reads the op annotations.)

Its run config is a typed form in the launchpad (:class:`BackfillConfig`). ``plan_backfill``
resolves times to offsets, retires what ``replace`` replaces (see :mod:`pipelines.backfill`),
and fans the chunks out, so a retry ``FROM_FAILURE`` re-runs only the chunks whose step
failed; each chunk drops the retired batches it has loaded again.
The command line and the schedules split a request into one run per chunk instead, each
naming its offsets; such a run plans exactly its one chunk.
"""

from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from pydantic import Field

from pipelines.backfill import BackfillRequest, backfill_range, parse_position, plan_backfill
from pipelines.config import SinkSettings
from pipelines.jobs import (
    PARTITIONS_TAG,
    RANGE_TAG,
    RUN_RETRIES,
    mapping_key,
    retry_policy,
    run_delivery,
)
from pipelines.plan import OffsetRange
from resources.sink import SinkResource

JOB_NAME = "backfill"
BACKFILL_TAG = "kusto-sink/backfill"


class BackfillConfig(dg.Config):
    """A range to read again. Give a start as an offset or a time; the end likewise, or
    neither for the end of the log. Times are ISO 8601 (UTC unless a zone is named)."""

    topic: str = Field(description="Kafka topic to read again")
    partitions: list[int] = Field(
        default_factory=list, description="Partitions to read; empty for all"
    )
    from_offset: int | None = Field(None, description="First offset (inclusive)")
    from_time: str | None = Field(None, description="Or: first record time, e.g. 2026-11-28T10:00Z")
    to_offset: int | None = Field(None, description="End offset (exclusive)")
    to_time: str | None = Field(None, description="Or: end time (exclusive)")
    table: str | None = Field(
        None, description="Into this table (T or db.T) instead of the configured one"
    )
    replace: bool = Field(
        False, description="Load the range again, then drop the batches Kusto held of it"
    )

    def request(self) -> BackfillRequest:
        return BackfillRequest(
            topic=self.topic,
            start=_position("from", self.from_offset, self.from_time),
            end=_optional_position("to", self.to_offset, self.to_time),
            partitions=tuple(self.partitions) or None,
            table=self.table,
            replace=self.replace,
        )


@dataclass(frozen=True)
class Chunk:
    range: OffsetRange
    table: str | None


def backfill_run_config(rng: OffsetRange, table: str | None) -> dict[str, object]:
    """The run config of a run backfilling exactly ``rng`` (already planned and retired)."""
    config = {
        "topic": rng.topic,
        "partitions": [rng.partition],
        "from_offset": rng.start,
        "to_offset": rng.end,
        "table": table,
        "replace": False,
    }
    return {"ops": {"plan_backfill": {"config": config}}}


def backfill_run_tags(sink_name: str, rng: OffsetRange, table: str | None) -> dict[str, str]:
    """Tags of a one-chunk backfill run (see :func:`backfill_tags`)."""
    return backfill_tags(
        sink_name, rng.key, f"backfill {rng}" + (f" into {table}" if table else "")
    )


def backfill_tags(sink_name: str, partition_key: str, what: str) -> dict[str, str]:
    """Tags of a backfill run of one partition, saying what it does in the runs list.

    No ``kusto-sink/sink`` tag: the live sensors must not count backfills as busy
    partitions, since a backfill never moves the group's offsets.
    """
    return {
        BACKFILL_TAG: sink_name,
        PARTITIONS_TAG: partition_key,
        RANGE_TAG: what,
        "dagster/max_retries": str(RUN_RETRIES),
        "dagster/retry_strategy": "FROM_FAILURE",
    }


@dg.op(
    out=dg.DynamicOut(Chunk),
    description="Resolve times to offsets, retire replaced batches, fan the chunks out",
)
def plan_backfill_op(context: dg.OpExecutionContext, config: BackfillConfig, sink: SinkResource):  # type: ignore[no-untyped-def]
    request = config.request()
    if RANGE_TAG not in context.run.tags:
        # Launched from the launchpad: say in the runs list what it reads, as the command
        # line's and the schedules' runs do from their launch.
        context.instance.add_run_tags(context.run_id, {RANGE_TAG: f"backfill {request.describe()}"})
    with sink.runtime() as runtime:
        plan = plan_backfill(runtime, request)
    replacing = f"; replacing {len(plan.replaced_batches)} batch(es)" if request.replace else ""
    context.log.info(
        f"backfill {request.describe()}: {plan.offsets} offsets in {len(plan.ranges)} "
        f"chunk(s){replacing}"
    )
    for rng in plan.ranges:
        yield dg.DynamicOutput(Chunk(rng, request.table), mapping_key=mapping_key(rng))


def build_backfill_job(settings: SinkSettings) -> dg.JobDefinition:
    @dg.op(
        name="backfill_chunk",
        description="Load the offsets of one chunk that the table does not hold; no commit",
        retry_policy=retry_policy(settings),
    )
    def backfill_chunk(context: dg.OpExecutionContext, sink: SinkResource, chunk: Chunk) -> None:
        into = f" into {chunk.table}" if chunk.table else ""
        context.log.info(f"backfill {chunk.range}{into}")

        reports = run_delivery(
            context,
            sink,
            [chunk.range],
            lambda runtime: [backfill_range(runtime, chunk.range, chunk.table)],
            kind="backfill",
        )
        if not reports:
            context.log.info(f"backfill {chunk.range}: the table already holds every offset")

    @dg.job(
        name=JOB_NAME,
        description=f"Read a Kafka range of sink {settings.name} again into Kusto; "
        "commits no offset",
        tags={BACKFILL_TAG: settings.name},
    )
    def backfill() -> None:
        plan_backfill_op.alias("plan_backfill")().map(backfill_chunk)

    return backfill


def _position(which: str, offset: int | None, time: str | None) -> int | datetime:
    found = _optional_position(which, offset, time)
    if found is None:
        raise dg.Failure(f"give {which}_offset or {which}_time")
    return found


def _optional_position(which: str, offset: int | None, time: str | None) -> int | datetime | None:
    if offset is not None and time is not None:
        raise dg.Failure(f"give {which}_offset or {which}_time, not both")
    if time is not None:
        moment = parse_position(time)
        if isinstance(moment, int):
            raise dg.Failure(f"{which}_time {time!r} is an offset; use {which}_offset")
        return moment
    return offset
