"""The delivery sensors' timing and run requests, without servers (sensors/lag.py)."""

from __future__ import annotations

from pipelines.config import SinkSettings
from pipelines.follow import FollowPolicy
from pipelines.plan import PartitionState, TopicPartition
from sensors.lag import (
    FOLLOW_SECONDS,
    LIVE_RUN_MAX_SECONDS,
    MAX_RUNTIME_TAG,
    run_requests,
    tick_interval,
)


def sink(**changes: object) -> SinkSettings:
    raw: dict[str, object] = {
        "name": "orders",
        "kafka": {"bootstrap_servers": "127.0.0.1:9092"},
        "kusto": {"ingestion_url": "http://127.0.0.1:8080"},
        "topics": ["orders", "clicks"],
        "mappings": [
            {"topic": "orders", "db": "Sales", "table": "Orders", "format": "json"},
            {
                "topic": "clicks",
                "db": "Web",
                "table": "Clicks",
                "format": "json",
                "streaming": True,
            },
        ],
    }
    return SinkSettings.model_validate({**raw, **changes})


def test_the_interval_sensor_ticks_every_flush_interval_on_the_daemons_5_s_loop():
    # A tick is due once its minimum interval has passed; the daemon's loop comes back
    # every 5 s, so the interval is the flush interval less one loop.
    assert tick_interval(10) == 5
    assert tick_interval(30) == 25
    # Shorter than a loop: every loop. The lag sensor asks for that with 0.
    assert tick_interval(3) == tick_interval(0) == 1


def test_a_run_request_delivers_its_ranges_then_follows_their_partitions():
    states = {
        TopicPartition("orders", 0): PartitionState(committed=100, low=0, high=250),
        TopicPartition("orders", 1): PartitionState(committed=None, low=0, high=40),
    }
    (request,) = run_requests(sink(), states, busy=set(), trigger=lambda tp, s: True)
    config = request.run_config["ops"]["offset_ranges"]["config"]
    ranges = config["ranges"]
    assert sorted((r["partition"], r["start"], r["end"]) for r in ranges) == [
        (0, 100, 250),
        (1, 0, 40),
    ]
    assert config["follow_seconds"] == FOLLOW_SECONDS
    # Run monitoring ends a run whose worker died; a healthy one ends long before.
    assert float(request.tags[MAX_RUNTIME_TAG]) == LIVE_RUN_MAX_SECONDS > 2 * FOLLOW_SECONDS


def test_streaming_topics_are_followed_without_waiting_for_the_flush_interval():
    policy = FollowPolicy.of(sink(flush_interval_ms=10_000), 60.0, ["orders", "clicks"])
    assert policy.wait_s(TopicPartition("clicks", 0), lag=1) == 0.0
    assert policy.wait_s(TopicPartition("orders", 0), lag=1) == 10.0
    assert policy.wait_s(TopicPartition("orders", 0), lag=policy.threshold) == 0.0
