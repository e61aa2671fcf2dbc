"""Scheduled backfills: each tick reads a rolling time window again, e.g. yesterday's hour
into an audit table.

Schedules are listed in a YAML file named by ``$KUSTO_SINK_BACKFILL_SCHEDULES`` (none
without it)::

    - name: orders_audit
      cron: "5 * * * *"          # every hour at :05
      topic: orders
      table: OrdersAudit         # or db.Table; default: the configured table
      window_hours: 1            # the window is one hour long...
      window_end_hours_ago: 23   # ...and ends 23 hours before the tick's hour: yesterday's

A tick asks for one run per partition, each naming the window in its config; the run
resolves the times to offsets and loads its chunks as separate steps. Run keys name the
window, so a tick evaluated twice launches nothing twice.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipelines.backfill_job import backfill_tags
from pipelines.config import SinkSettings
from pipelines.runtime import SinkRuntime

SCHEDULES_ENV = "KUSTO_SINK_BACKFILL_SCHEDULES"


class BackfillSchedule(BaseModel):
    """One scheduled backfill of a rolling window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="Schedule name in Dagster")
    cron: str = Field(description="When to run, as a cron expression (UTC)")
    topic: str
    partitions: list[int] | None = Field(None, description="Default: every partition")
    table: str | None = Field(None, description="T or db.T; default: the configured table")
    window_hours: int = Field(1, ge=1, description="Length of the window")
    window_end_hours_ago: int = Field(
        0, ge=0, description="How long before the tick's (whole) hour the window ends"
    )
    replace: bool = False

    def window(self, tick: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` of the window read at ``tick``."""
        hour = tick.replace(minute=0, second=0, microsecond=0)
        end = hour - timedelta(hours=self.window_end_hours_ago)
        return end - timedelta(hours=self.window_hours), end


def load_schedules(path: str | Path | None = None) -> list[BackfillSchedule]:
    """The schedules of the file at ``path``, or at ``$KUSTO_SINK_BACKFILL_SCHEDULES``."""
    path = path or os.environ.get(SCHEDULES_ENV)
    if not path:
        return []
    listed = yaml.safe_load(Path(path).read_text()) or []
    return [BackfillSchedule.model_validate(entry) for entry in listed]


def run_requests(
    schedule: BackfillSchedule, settings: SinkSettings, partitions: list[int], tick: datetime
) -> list[dg.RunRequest]:
    start, end = schedule.window(tick)
    into = f" into {schedule.table}" if schedule.table else ""
    requests = []
    for partition in partitions:
        config = {
            "topic": schedule.topic,
            "partitions": [partition],
            "from_time": start.isoformat(),
            "to_time": end.isoformat(),
            "table": schedule.table,
            "replace": schedule.replace,
        }
        where = f"{schedule.topic}[{partition}]"
        requests.append(
            dg.RunRequest(
                run_key=f"{schedule.name}:{start.isoformat()}:{partition}",
                run_config={"ops": {"plan_backfill": {"config": config}}},
                tags=backfill_tags(
                    settings.name,
                    where,
                    f"backfill {where} {start:%Y-%m-%d %H:%M}-{end:%H:%M}{into}",
                ),
            )
        )
    return requests


def build_backfill_schedule(
    schedule: BackfillSchedule, settings: SinkSettings, job: dg.JobDefinition
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=schedule.name,
        cron_schedule=schedule.cron,
        job=job,
        execution_timezone="UTC",
        description=f"Backfill {schedule.window_hours}h of {schedule.topic} ending "
        f"{schedule.window_end_hours_ago}h before each tick"
        + (f" into {schedule.table}" if schedule.table else ""),
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        tick = context.scheduled_execution_time
        partitions = schedule.partitions
        if partitions is None:
            with SinkRuntime(settings) as runtime:
                # Metadata only: which partitions exist, no offsets, no records.
                topic = runtime.admin.list_topics(schedule.topic, timeout=10).topics[schedule.topic]
                partitions = sorted(topic.partitions)
        return run_requests(schedule, settings, partitions, tick)

    return _schedule
