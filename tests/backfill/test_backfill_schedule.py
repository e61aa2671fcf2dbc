"""A scheduled backfill of yesterday's hour into an audit table: its run requests, and the
rows its runs load."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
import yaml
from backfill_data import BASE_TIME, RECORDS, create_table, ids_in

from pipelines.definitions import build_definitions
from sensors.backfill_schedules import SCHEDULES_ENV

pytestmark = pytest.mark.stack


def test_schedule_asks_for_yesterdays_hour_per_partition(kusto, delivered, tmp_path, monkeypatch):
    create_table(kusto, delivered.db, "Audit")
    schedules = tmp_path / "backfills.yaml"
    entry = {
        "name": "orders_audit",
        "cron": "5 * * * *",
        "topic": delivered.topic,
        "table": "Audit",
        "window_hours": 1,
        "window_end_hours_ago": 23,
    }
    schedules.write_text(yaml.safe_dump([entry]))
    monkeypatch.setenv(SCHEDULES_ENV, str(schedules))
    defs = build_definitions(str(delivered.settings_path))
    schedule = defs.resolve_schedule_def("orders_audit")
    job = defs.get_job_def("backfill")

    # The tick a day after the records' hour (10:00-11:00) reads that hour.
    tick = BASE_TIME + timedelta(days=1, minutes=5)
    with dg.instance_for_test() as instance:
        # As a context manager: the context enters the instance and must leave it again.
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as ctx:
            requests = schedule.evaluate_tick(ctx).run_requests
        assert [r.tags["kusto-sink/partitions"] for r in requests] == [
            f"{delivered.topic}[0]",
            f"{delivered.topic}[1]",
        ]
        assert requests[0].tags["kusto-sink/range"] == (
            f"backfill {delivered.topic}[0] 2026-11-27 10:00-11:00 into Audit"
        )
        config = requests[0].run_config["ops"]["plan_backfill"]["config"]
        assert (config["from_time"], config["to_time"]) == (
            BASE_TIME.isoformat(),
            (BASE_TIME + timedelta(hours=1)).isoformat(),
        )
        assert len({r.run_key for r in requests}) == 2
        for request in requests:
            result = job.execute_in_process(
                run_config=request.run_config, instance=instance, resources=defs.resources
            )
            assert result.success
    assert ids_in(kusto, delivered.db, "Audit") == list(range(RECORDS))
