import logging

import pytest

from pipelines.plan import OffsetRange, PartitionState, TopicPartition, next_range, plan

ORDERS_0 = TopicPartition("orders", 0)
ORDERS_1 = TopicPartition("orders", 1)


def test_offset_range_names_topic_partition_and_offsets() -> None:
    rng = OffsetRange("orders", 2, 1000, 2000)
    assert rng.records == 1000
    assert rng.key == "orders[2]"
    assert str(rng) == "orders[2] 1000-2000"
    assert rng.topic_partition == TopicPartition("orders", 2)


@pytest.mark.parametrize(("start", "end"), [(5, 5), (6, 5), (-1, 3)])
def test_offset_range_rejects_empty_or_negative(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="topic=orders partition=2"):
        OffsetRange("orders", 2, start, end)


def test_plan_starts_at_committed_offset_and_cuts_at_max_range_records() -> None:
    states = {ORDERS_0: PartitionState(committed=100, low=0, high=350)}
    assert plan(states, max_range_records=100, auto_offset_reset="earliest") == [
        OffsetRange("orders", 0, 100, 200),
        OffsetRange("orders", 0, 200, 300),
        OffsetRange("orders", 0, 300, 350),
    ]


@pytest.mark.parametrize(("reset", "expected"), [("earliest", [(10, 50)]), ("latest", [])])
def test_plan_without_committed_offset_follows_auto_offset_reset(
    reset: str, expected: list[tuple[int, int]]
) -> None:
    states = {ORDERS_0: PartitionState(committed=None, low=10, high=50)}
    ranges = plan(states, max_range_records=1000, auto_offset_reset=reset)  # type: ignore[arg-type]
    assert [(r.start, r.end) for r in ranges] == expected


def test_plan_skips_records_deleted_by_retention_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = PartitionState(committed=40, low=100, high=150)
    with caplog.at_level(logging.WARNING, logger="pipelines.plan"):
        ranges = plan({ORDERS_0: state}, max_range_records=1000, auto_offset_reset="earliest")
    assert ranges == [OffsetRange("orders", 0, 100, 150)]
    assert state.skipped() == 60
    assert "topic=orders partition=0" in caplog.text
    assert "60 records were deleted by retention" in caplog.text


def test_plan_gives_nothing_for_partitions_without_lag() -> None:
    states = {
        ORDERS_0: PartitionState(committed=50, low=0, high=50),
        ORDERS_1: PartitionState(committed=None, low=0, high=0),
        TopicPartition("empty", 0): PartitionState(committed=None, low=7, high=7),
    }
    assert plan(states, max_range_records=10, auto_offset_reset="earliest") == []


def test_plan_orders_ranges_by_topic_and_partition() -> None:
    states = {
        ORDERS_1: PartitionState(committed=0, low=0, high=1),
        TopicPartition("clicks", 0): PartitionState(committed=0, low=0, high=1),
        ORDERS_0: PartitionState(committed=0, low=0, high=1),
    }
    keys = [r.key for r in plan(states, max_range_records=10, auto_offset_reset="earliest")]
    assert keys == ["clicks[0]", "orders[0]", "orders[1]"]


def test_lag_counts_records_from_where_reading_starts() -> None:
    assert PartitionState(committed=None, low=5, high=20).lag("earliest") == 15
    assert PartitionState(committed=None, low=5, high=20).lag("latest") == 0
    assert PartitionState(committed=12, low=5, high=20).lag("latest") == 8
    assert PartitionState(committed=2, low=5, high=20).lag("earliest") == 15
    # A committed offset past the high watermark (topic recreated) is no negative lag.
    assert PartitionState(committed=30, low=0, high=20).lag("earliest") == 0


def test_next_range_is_the_first_planned_range() -> None:
    state = PartitionState(committed=100, low=0, high=350)
    rng = next_range(ORDERS_0, state, max_range_records=100, reset="earliest")
    assert rng == OffsetRange("orders", 0, 100, 200)
    assert (
        next_range(ORDERS_0, PartitionState(350, 0, 350), max_range_records=100, reset="earliest")
        is None
    )


def test_max_range_records_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_range_records"):
        plan(
            {ORDERS_0: PartitionState(0, 0, 10)}, max_range_records=0, auto_offset_reset="earliest"
        )


def test_plan_warns_of_a_committed_offset_past_the_end_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = PartitionState(committed=500, low=0, high=20)
    with caplog.at_level(logging.WARNING, logger="pipelines.plan"):
        assert plan({ORDERS_0: state}, max_range_records=10, auto_offset_reset="earliest") == []
    assert "topic=orders partition=0: committed offset 500 is past the high watermark 20" in (
        caplog.text
    )
