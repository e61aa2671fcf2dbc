"""How a run's ranges are dealt to its steps (pipelines.jobs)."""

from __future__ import annotations

from pipelines.jobs import deal, mapping_key, run_config
from pipelines.plan import OffsetRange


def ranges(*partitions: int) -> list[OffsetRange]:
    return [OffsetRange("orders", p, 100 * i, 100 * i + 100) for i, p in enumerate(partitions)]


def test_one_step_delivers_every_range_of_the_run_in_order() -> None:
    planned = ranges(0, 1, 2)
    assert deal(planned, 1) == [planned]


def test_steps_share_the_partitions_and_a_partition_stays_in_one_step_in_order() -> None:
    planned = ranges(0, 1, 0, 2, 3)
    groups = deal(planned, 2)
    assert len(groups) == 2
    assert sorted(r.start for g in groups for r in g) == [r.start for r in planned]
    (with_partition_0,) = [g for g in groups if any(r.partition == 0 for r in g)]
    assert [r.start for r in with_partition_0 if r.partition == 0] == [0, 200]


def test_no_more_steps_than_partitions() -> None:
    assert deal(ranges(0, 1), 8) == [[r] for r in ranges(0, 1)]


def test_a_group_is_named_by_its_first_range_and_how_many_follow() -> None:
    (first, *_rest) = planned = ranges(0, 1, 2)
    assert mapping_key(first) == "orders_0_0_100"
    assert mapping_key(planned[0], len(planned) - 1) == "orders_0_0_100_and_2_more"


def test_run_config_sets_steps_and_executor_together() -> None:
    one = run_config(ranges(0, 1))
    assert "steps" not in one["ops"]["offset_ranges"]["config"]  # type: ignore[index]
    assert "in_process" in one["execution"]["config"]  # type: ignore[index]
    two = run_config(ranges(0, 1), max_concurrent=2)
    assert two["ops"]["offset_ranges"]["config"]["steps"] == 2  # type: ignore[index]
    assert two["execution"]["config"]["multiprocess"]["max_concurrent"] == 2  # type: ignore[index]
