"""A live run following its partitions (pipelines.follow), on a simulated clock and log."""

from __future__ import annotations

from pipelines.follow import FollowPolicy, follow
from pipelines.plan import OffsetRange, PartitionState, TopicPartition, plan

STREAMED = TopicPartition("clicks", 0)
QUEUED = TopicPartition("orders", 0)


class World:
    """Partitions whose logs grow by ``rate`` records a second; deliveries take ``work_s``."""

    def __init__(self, rate: dict[TopicPartition, float], until: float = 1e9, work_s: float = 0.2):
        self.now = 0.0
        self.rate, self.until, self.work_s = rate, until, work_s
        self.committed = dict.fromkeys(rate, 0)
        self.delivered: list[tuple[float, OffsetRange]] = []

    def high(self, tp: TopicPartition) -> int:
        return int(self.rate[tp] * min(self.now, self.until))

    def states(self) -> dict[TopicPartition, PartitionState]:
        return {tp: PartitionState(self.committed[tp], 0, self.high(tp)) for tp in self.rate}

    def deliver(self, rng: OffsetRange) -> None:
        assert rng.start == self.committed[rng.topic_partition], "ranges follow each other"
        self.now += self.work_s
        self.committed[rng.topic_partition] = rng.end
        self.delivered.append((self.now, rng))

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def follow(self, policy: FollowPolicy) -> int:
        return follow(
            list(self.rate),
            policy,
            states=self.states,
            plan=lambda states: plan(
                states, max_range_records=10_000, auto_offset_reset="earliest"
            ),
            deliver=self.deliver,
            clock=lambda: self.now,
            sleep=self.sleep,
        )


def policy(seconds: float = 60.0, threshold: int = 100_000) -> FollowPolicy:
    return FollowPolicy(
        seconds=seconds,
        flush_interval_s=10.0,
        threshold=threshold,
        streaming_topics=frozenset({STREAMED.topic}),
    )


def test_a_streamed_partition_is_delivered_as_soon_as_it_lags():
    world = World({STREAMED: 1000.0})
    world.follow(policy(seconds=30))
    gaps = [b - a for (a, _), (b, _) in zip(world.delivered, world.delivered[1:], strict=False)]
    assert world.delivered and max(gaps) < 1.0  # one poll plus one delivery at most


def test_a_queued_partition_is_delivered_every_flush_interval():
    world = World({QUEUED: 10.0})
    world.follow(policy(seconds=35))
    times = [t for t, _ in world.delivered]
    assert len(times) == 3 and 10.0 <= times[0] < 11.0
    # Each flush interval from when the last range was planned, to within a poll.
    assert all(10.0 <= b - a < 10.5 for a, b in zip(times, times[1:], strict=False))


def test_a_partition_past_the_lag_threshold_is_delivered_at_once():
    world = World({QUEUED: 1000.0})
    world.follow(policy(seconds=5, threshold=500))
    assert world.delivered[0][0] < 1.0
    assert all(rng.records <= 1000 for _, rng in world.delivered)


def test_the_run_ends_once_its_partitions_are_idle_for_a_flush_interval():
    world = World({STREAMED: 1000.0, QUEUED: 10.0}, until=20.0)
    delivered = world.follow(policy(seconds=300))
    assert 30.0 <= world.now < 32.0  # the last record at 20 s, delivered by 30 s, then idle
    assert delivered == len(world.delivered)
    assert world.committed == {STREAMED: 20_000, QUEUED: 200}


def test_the_run_ends_after_its_seconds_while_records_keep_coming():
    world = World({STREAMED: 1000.0})
    world.follow(policy(seconds=20))
    assert 20.0 <= world.now < 21.0
    assert world.committed[STREAMED] >= 19_000


def test_a_partition_without_lag_is_never_delivered():
    world = World({STREAMED: 0.0, QUEUED: 10.0}, until=5.0)
    world.follow(policy(seconds=60))
    assert {rng.topic_partition for _, rng in world.delivered} == {QUEUED}
