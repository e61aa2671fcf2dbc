"""Backfill runs are bounded by the instance's run queue, apart from the live sink's runs."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
from dagster._utils.tags import TagConcurrencyLimitsCounter

from pipelines.backfill_job import BACKFILL_TAG, backfill_run_tags
from pipelines.jobs import run_tags
from pipelines.plan import OffsetRange

REPO = Path(__file__).resolve().parents[2]


def queued_run(tags: dict[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="backfill", run_id=str(uuid.uuid4()), tags=tags)


def chunk_run(sink: str, partition: int) -> dg.DagsterRun:
    return queued_run(backfill_run_tags(sink, OffsetRange("orders", partition, 0, 100), None))


def test_the_queue_holds_a_third_backfill_run_of_a_sink_and_nothing_else(tmp_path, monkeypatch):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        limits = instance.run_coordinator.get_run_queue_config().tag_concurrency_limits  # type: ignore[attr-defined]
    assert {"key": BACKFILL_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 2} in limits

    # The daemon's own bookkeeping: two backfill runs of `shop` are in progress.
    counter = TagConcurrencyLimitsCounter(limits, [chunk_run("shop", 0), chunk_run("shop", 1)])
    assert counter.is_blocked(chunk_run("shop", 2))
    assert not counter.is_blocked(chunk_run("audit", 2))
    live = queued_run(run_tags("shop", [OffsetRange("orders", 2, 100, 200)]))
    assert not counter.is_blocked(live)
