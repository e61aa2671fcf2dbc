"""``replace`` against the local stack: whole batches swapped, and no record lost or left
twice however the backfill is interrupted (SIGKILL at the test-only crash points)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from backfill_data import PARTITIONS, RECORDS, ids_in

from pipelines.backfill import BackfillRequest, backfill_range, plan_backfill
from pipelines.deliver import CRASH_AT_ENV
from pipelines.extents import batch_extents

pytestmark = pytest.mark.stack


def batches_of_partition_0(kusto, delivered):
    extents = batch_extents(kusto, delivered.db, "Events", delivered.topic, 0)
    return sorted(extents, key=lambda e: e.first_offset)


def untagged_extents(kusto, delivered) -> int:
    """Extents of Events without an ``ingest-by`` tag: retired ones not yet dropped."""
    rows = kusto.execute_mgmt(delivered.db, ".show table Events extents").primary_results[0]
    return sum("ingest-by:" not in str(row["Tags"]) for row in rows)


def test_replace_loads_whole_overlapping_batches_again_then_drops_the_old(kusto, delivered):
    old = batches_of_partition_0(kusto, delivered)
    # From inside the second batch to inside the third: both are replaced whole.
    start, end = old[1].first_offset + 5, old[2].first_offset + 5
    request = BackfillRequest(delivered.topic, start, end, partitions=(0,), replace=True)
    with delivered.runtime() as runtime:
        plan = plan_backfill(runtime, request)
        assert sorted(plan.replaced_batches) == sorted([old[1].batch_id, old[2].batch_id])
        (rng,) = plan.ranges
        assert (rng.start, rng.end) == (old[1].first_offset, old[2].last_offset + 1)
        # Planned and retired, nothing loaded yet: every record is still there.
        assert ids_in(kusto, delivered.db, "Events") == list(range(RECORDS))
        loaded = sum(r.rows for r in backfill_range(runtime, rng))
    assert loaded == old[1].rows + old[2].rows
    assert ids_in(kusto, delivered.db, "Events") == list(range(RECORDS))
    after = {e.extent_id for e in batch_extents(kusto, delivered.db, "Events", delivered.topic)}
    assert old[1].extent_id not in after and old[0].extent_id in after
    assert len(after) > PARTITIONS
    assert untagged_extents(kusto, delivered) == 0


def test_an_interrupted_replace_loses_nothing_and_the_same_command_finishes_it(
    kusto, delivered, tmp_path
):
    old = batches_of_partition_0(kusto, delivered)
    # Chunks of 120 offsets: the widened range takes two runs, cut apart from the batches.
    settings = delivered.write_settings("replace", max_range_records=120)
    start, end = old[1].first_offset + 5, old[4].first_offset + 5
    args = [
        *(sys.executable, "-m", "pipelines.cli", "backfill", "-c", str(settings)),
        *("--topic", delivered.topic, "--partitions", "0", "--replace"),
        *("--from", str(start), "--to", str(end)),
    ]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}

    def backfill(crash_at: str | None) -> subprocess.CompletedProcess[str]:
        extra = {CRASH_AT_ENV: crash_at} if crash_at else {}
        return subprocess.run(
            args, cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=240
        )

    # Killed in the first chunk, right after its first batch went to Kusto; then again
    # once a chunk's batches are in, before the batches they replace are dropped.
    for crash_at in ("after_first_submit", "backfill_before_drop"):
        crashed = backfill(crash_at)
        assert crashed.returncode == -9, crashed.stderr + crashed.stdout
        assert set(ids_in(kusto, delivered.db, "Events")) == set(range(RECORDS)), crash_at

    done = backfill(None)
    assert done.returncode == 0, done.stderr + done.stdout
    assert ids_in(kusto, delivered.db, "Events") == list(range(RECORDS))
    assert untagged_extents(kusto, delivered) == 0
    now = {e.extent_id for e in batches_of_partition_0(kusto, delivered)}
    assert now.isdisjoint(e.extent_id for e in old[1:5])
    assert {old[0].extent_id, old[5].extent_id} <= now
