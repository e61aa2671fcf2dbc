"""Follow: a live run keeps delivering its partitions while new records arrive.

Starting a run costs seconds before it reads a record: the daemon's queue, a new process
that imports Dagster and the sink and loads the definitions, clients and the preflight
(12-17 s each on the loaded 2-core bench box, bench/NOTES.md). A run per tick pays that
for every few seconds of records, and a partition waits for its running run to end before
the next tick can plan it again. So a sensor's run, once its planned ranges are committed,
stays with its partitions: it delivers what they gain, each range from the committed
offset and committed by compare-and-set exactly as a planned range is, until they have had
nothing new for a flush interval or the run has lived its ``seconds``. Then the sensors
plan again. Following changes when records are delivered, never how.

When a partition is due mirrors the sensors: at once when it lags ``lag_threshold_records``
or its topic is ingested by streaming (low latency is the point of streaming), else once
``flush_interval_ms`` has passed since its last delivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipelines.config import SinkSettings
from pipelines.plan import AutoOffsetReset, OffsetRange, PartitionState, TopicPartition

# How often offsets are read while no partition is due: a broker round trip, cheap.
POLL_S = 0.5

States = Callable[[], Mapping[TopicPartition, PartitionState]]
Planner = Callable[[dict[TopicPartition, PartitionState]], list[OffsetRange]]


@dataclass(frozen=True)
class FollowPolicy:
    seconds: float
    flush_interval_s: float
    threshold: int
    streaming_topics: frozenset[str]
    reset: AutoOffsetReset = "earliest"

    @classmethod
    def of(cls, settings: SinkSettings, seconds: float, topics: Sequence[str]) -> FollowPolicy:
        streaming = {
            topic
            for topic in topics
            if (mappings := settings.mapping_for(topic)) and all(m.streaming for m in mappings)
        }
        return cls(
            seconds=seconds,
            flush_interval_s=settings.flush_interval_ms / 1000,
            threshold=settings.lag_threshold_records,
            streaming_topics=frozenset(streaming),
            reset=settings.kafka.auto_offset_reset,
        )

    def wait_s(self, tp: TopicPartition, lag: int) -> float:
        """How long after its last delivery a partition lagging ``lag`` records is due."""
        if lag >= self.threshold or tp.topic in self.streaming_topics:
            return 0.0
        return self.flush_interval_s


def follow(
    partitions: Sequence[TopicPartition],
    policy: FollowPolicy,
    *,
    states: States,
    plan: Planner,
    deliver: Callable[[OffsetRange], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Deliver ``partitions``' new records until they are idle for a flush interval or
    ``policy.seconds`` have passed; returns how many ranges were delivered."""
    began = clock()
    last_delivery = dict.fromkeys(partitions, began)
    last_work = began
    delivered = 0
    while clock() - began < policy.seconds:
        now = clock()
        current = states()
        lags = {tp: current[tp].lag(policy.reset) for tp in partitions if tp in current}
        if any(lags.values()):
            last_work = now
        elif now - last_work >= policy.flush_interval_s:
            break
        due = {
            tp: current[tp]
            for tp, lag in lags.items()
            if lag > 0 and now - last_delivery[tp] >= policy.wait_s(tp, lag)
        }
        # One range per partition a round: its next range starts where this one commits.
        firsts: dict[TopicPartition, OffsetRange] = {}
        for rng in plan(due):
            firsts.setdefault(rng.topic_partition, rng)
        for tp, rng in firsts.items():
            # From when its range was planned: the records after it have waited since.
            last_delivery[tp] = now
            deliver(rng)
            delivered += 1
        if not firsts:
            sleep(POLL_S)
    return delivered
