"""How a run's ranges are dealt to its steps (pipelines.jobs)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest

from pipelines.errors import DecodeError, KafkaUnavailable
from pipelines.jobs import deal, mapping_key, run_config, run_delivery
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


class _NoClients:
    """Stands in for the sink resource: run_delivery only opens and closes its runtime."""

    @contextmanager
    def runtime(self) -> Iterator[None]:
        yield None


class _Context:
    """The parts of an op's context run_delivery uses: its event log and logger."""

    retry_number = 0
    log = logging.getLogger("test_jobs")

    def __init__(self) -> None:
        self.events: list[object] = []

    def log_event(self, event: object) -> None:
        self.events.append(event)


def test_a_step_with_one_transient_failure_among_its_ranges_is_retried() -> None:
    planned = ranges(0, 1)
    bad_record = DecodeError("bad", topic="orders", partition=0, offset=5)
    broker_away = KafkaUnavailable("away", topic="orders", partition=1)
    with pytest.raises(KafkaUnavailable):  # retried by the step's policy
        run_delivery(
            _Context(), _NoClients(), planned,  # type: ignore[arg-type]
            lambda runtime: [bad_record, broker_away], kind="live",
        )  # fmt: skip
    context = _Context()
    with pytest.raises(dg.Failure) as failed:  # nothing a retry could mend
        run_delivery(
            context, _NoClients(), planned,  # type: ignore[arg-type]
            lambda runtime: [bad_record, []], kind="live",
        )  # fmt: skip
    assert "offset=5" in str(failed.value)
    # Both ranges are on the record: one failed, one delivered (nothing to ingest).
    assert [e.metadata["offsets"].value for e in context.events] == ["0-100", "100-200"]  # type: ignore[attr-defined]
