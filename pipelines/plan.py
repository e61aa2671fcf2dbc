"""Offset-range planning: committed offsets and watermarks in, offset ranges out.

Pure: no Kafka client, no Dagster. A sensor reads :class:`PartitionState` for each
topic-partition (see :func:`pipelines.read.partition_states`) and asks :func:`plan` which
ranges a run should read. Ranges are half-open, ``[start, end)``, and cut at fixed
multiples of ``max_range_records`` from the start, so the same state always gives the same
ranges.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

AutoOffsetReset = Literal["earliest", "latest"]


@dataclass(frozen=True, order=True)
class TopicPartition:
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True)
class OffsetRange:
    """Offsets ``start`` up to, not including, ``end`` of one topic-partition."""

    topic: str
    partition: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(
                f"offset range of topic={self.topic} partition={self.partition} must have "
                f"0 <= start < end, got start={self.start} end={self.end}"
            )

    @property
    def records(self) -> int:
        """Offsets in the range; fewer records arrive on compacted or transactional topics."""
        return self.end - self.start

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def key(self) -> str:
        return f"{self.topic}[{self.partition}]"

    def __str__(self) -> str:
        return f"{self.key} {self.start}-{self.end}"


@dataclass(frozen=True)
class PartitionState:
    """What the sink knows of a partition: its group's committed offset and its watermarks."""

    committed: int | None
    low: int
    high: int

    def start(self, reset: AutoOffsetReset) -> int:
        """The next offset to read: the committed one, or where ``reset`` points.

        A committed offset below ``low`` names records that retention has deleted; reading
        resumes at ``low`` (see :meth:`skipped`).
        """
        if self.committed is None:
            return self.low if reset == "earliest" else self.high
        return max(self.committed, self.low)

    def skipped(self) -> int:
        """Records deleted by retention before the sink read them."""
        if self.committed is None:
            return 0
        return max(0, self.low - self.committed)

    def lag(self, reset: AutoOffsetReset) -> int:
        """Records behind: from where reading starts up to the high watermark."""
        return max(0, self.high - self.start(reset))


def next_range(
    tp: TopicPartition, state: PartitionState, *, max_range_records: int, reset: AutoOffsetReset
) -> OffsetRange | None:
    """The first range :func:`plan` would give for one partition, or ``None`` without lag."""
    ranges = _ranges(tp, state, max_range_records=max_range_records, reset=reset, limit=1)
    return ranges[0] if ranges else None


def plan(
    states: Mapping[TopicPartition, PartitionState],
    *,
    max_range_records: int,
    auto_offset_reset: AutoOffsetReset,
) -> list[OffsetRange]:
    """Every range to read, ordered by topic, partition and offset.

    Partitions without lag give none. Records lost to retention are logged as a warning
    naming the partition and the offsets skipped; ``PartitionState.skipped`` gives the
    count to callers that report it elsewhere (sensor metadata). So is a committed offset
    past the end of the log, which would otherwise stall the partition silently.

    With ``latest`` and nothing committed, a partition starts at its high watermark, and
    gives no range; commit that offset once (``OffsetCommitter.start_at``) or every plan
    would start again at the then high watermark and never read anything.
    """
    ranges: list[OffsetRange] = []
    for tp in sorted(states):
        ranges += _ranges(
            tp, states[tp], max_range_records=max_range_records, reset=auto_offset_reset
        )
    return ranges


def _ranges(
    tp: TopicPartition,
    state: PartitionState,
    *,
    max_range_records: int,
    reset: AutoOffsetReset,
    limit: int | None = None,
) -> list[OffsetRange]:
    if max_range_records < 1:
        raise ValueError(f"max_range_records must be at least 1, got {max_range_records}")
    if skipped := state.skipped():
        log.warning(
            "topic=%s partition=%d: committed offset %d is below the low watermark %d; "
            "%d records were deleted by retention before the sink read them, reading "
            "resumes at offset %d",
            tp.topic,
            tp.partition,
            state.committed,
            state.low,
            skipped,
            state.low,
        )
    if state.committed is not None and state.committed > state.high:
        log.warning(
            "topic=%s partition=%d: committed offset %d is past the high watermark %d (was "
            "the topic deleted and created again?); nothing is read until the log grows past "
            "it or the group's offset is reset",
            tp.topic,
            tp.partition,
            state.committed,
            state.high,
        )
    start, high = state.start(reset), state.high
    starts = range(start, high, max_range_records)
    if limit is not None:
        starts = starts[:limit]
    return [
        OffsetRange(tp.topic, tp.partition, s, min(s + max_range_records, high)) for s in starts
    ]
