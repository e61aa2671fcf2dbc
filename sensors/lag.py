"""Sensors that launch delivery runs: one on an interval, one on consumer lag.

A tick reads committed offsets and watermarks only (never records, never commits), plans
ranges, leaves out partitions that a queued or running run already covers, and asks for
runs. No run key: a range whose run failed for good is simply planned again next tick.
A run, once its ranges are committed, follows its partitions for up to FOLLOW_SECONDS
(:mod:`pipelines.follow`): starting a run costs more than delivering a few seconds of
records, so the sensors start runs and the runs keep up with the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.config import SinkSettings
from pipelines.jobs import PARTITIONS_TAG, SINK_TAG, run_config, run_tags
from pipelines.plan import OffsetRange, PartitionState, TopicPartition
from pipelines.runtime import SinkRuntime

MAX_RETRIES_TAG = "dagster/max_retries"
RETRY_NUMBER_TAG = "dagster/retry_number"
PARENT_RUN_TAG = "dagster/parent_run_id"
RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Ranges per run: enough to amortise a run's start-up, few enough that one slow partition
# does not hold back the others for long.
RANGES_PER_RUN = 8
# A live run's longest life: long enough that its start-up is paid rarely, short enough
# that its event log stays small and new code or partitions are picked up within minutes.
FOLLOW_SECONDS = 300.0
# A live run outliving this has lost its worker (killed outright, its pod evicted): Dagster's
# run monitoring fails it and run retries start it again, so its partitions are not held
# busy for ever. Generous: a run delivers up to RANGES_PER_RUN ranges before it follows.
LIVE_RUN_MAX_SECONDS = 3600
MAX_RUNTIME_TAG = "dagster/max_runtime"
# The daemon looks at its sensors every 5 s at most (dagster._daemon.sensor's loop). A tick
# is due when the time since the last one reaches the minimum interval, and the loop comes
# back just short of 5 s later: an interval of N s gives ticks every N + 5 s.
DAEMON_LOOP_S = 5

Trigger = Callable[[TopicPartition, PartitionState], bool]


# The run-retry daemon retries a failed run within seconds; a failed run older than this
# without a retry will not get one, and its partitions are planned afresh.
RETRY_GRACE = timedelta(minutes=5)


def in_flight_partitions(
    instance: dg.DagsterInstance, sink_name: str, *, daemon: bool = True
) -> set[str]:
    """Partitions (``topic[p]``) that a queued or running run of this sink covers, or that a
    failed run still waiting for its automatic retry (``FROM_FAILURE``) will cover.

    With ``daemon=False`` only runs already running count: queued runs and retries need
    the daemon, which may not be running at all.
    """
    tags = {SINK_TAG: sink_name}
    statuses = IN_FLIGHT if daemon else RUNNING
    runs = list(instance.get_runs(filters=dg.RunsFilter(statuses=statuses, tags=tags)))
    if daemon:
        recently_failed = instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.FAILURE],
                tags=tags,
                updated_after=datetime.now(UTC) - RETRY_GRACE,
            )
        )
        runs += [run for run in recently_failed if _awaits_retry(instance, run)]
    return {key for run in runs for key in run.tags.get(PARTITIONS_TAG, "").split(",") if key}


def _awaits_retry(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    retries_left = int(run.tags.get(MAX_RETRIES_TAG, "0")) - int(
        run.tags.get(RETRY_NUMBER_TAG, "0")
    )
    if retries_left <= 0:
        return False
    child = dg.RunsFilter(tags={PARENT_RUN_TAG: run.run_id})
    return not instance.get_runs(filters=child, limit=1)


def run_requests(
    settings: SinkSettings,
    states: dict[TopicPartition, PartitionState],
    busy: set[str],
    trigger: Trigger,
) -> list[dg.RunRequest]:
    """Runs for the partitions that ``trigger`` selects and no run covers yet."""
    chosen = {tp: s for tp, s in states.items() if str(tp) not in busy and trigger(tp, s)}
    with_ranges: list[OffsetRange] = SinkRuntime(settings).plan(chosen)
    return [
        dg.RunRequest(
            # tasks.max steps at once; 1 (the default) runs them in the run's own process.
            run_config=run_config(
                group, follow_seconds=FOLLOW_SECONDS, max_concurrent=settings.tasks_max
            ),
            tags={**run_tags(settings.name, group), MAX_RUNTIME_TAG: str(LIVE_RUN_MAX_SECONDS)},
        )
        for group in group_ranges(with_ranges)
    ]


def group_ranges(ranges: list[OffsetRange]) -> list[list[OffsetRange]]:
    # A partition's ranges stay in one run, in order: its commits must follow each other.
    by_partition: dict[str, list[OffsetRange]] = {}
    for rng in ranges:
        by_partition.setdefault(rng.key, []).append(rng)
    groups: list[list[OffsetRange]] = [[]]
    for partition_ranges in by_partition.values():
        first = partition_ranges[:1]
        if len(groups[-1]) + len(first) > RANGES_PER_RUN:
            groups.append([])
        # One range per partition per run: the next one starts where this one commits.
        groups[-1].extend(first)
    return [g for g in groups if g]


def build_sensor(
    settings: SinkSettings,
    job: dg.JobDefinition,
    *,
    name: str,
    interval_seconds: int,
    trigger: Trigger,
    description: str,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        # Busy partitions first: a run that commits and ends after this read is still
        # counted busy, where reading offsets first could plan its range again.
        busy = in_flight_partitions(context.instance, settings.name)
        with SinkRuntime(settings) as runtime:
            states = runtime.partition_states()
        requests = run_requests(settings, states, busy, trigger)
        lag = sum(s.lag(settings.kafka.auto_offset_reset) for s in states.values())
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if requests else f"lag {lag} records; nothing to launch",
        )

    return _sensor


def build_sensors(settings: SinkSettings, job: dg.JobDefinition) -> list[dg.SensorDefinition]:
    reset = settings.kafka.auto_offset_reset
    threshold = settings.lag_threshold_records
    return [
        build_sensor(
            settings,
            job,
            name=f"{safe_name(settings.name)}_interval",
            interval_seconds=tick_interval(settings.flush_interval_ms / 1000),
            trigger=lambda tp, s: 0 < s.lag(reset) < threshold,
            description="Flush partitions with any lag every flush.interval.ms",
        ),
        build_sensor(
            settings,
            job,
            name=f"{safe_name(settings.name)}_lag",
            interval_seconds=tick_interval(0),
            trigger=lambda tp, s: s.lag(reset) >= threshold,
            description=f"Launch runs as soon as a partition is {threshold}+ records behind",
        ),
    ]


def tick_interval(seconds: float) -> int:
    """The minimum interval that makes the daemon tick a sensor every ``seconds`` (rounded
    up to its loop), or on every loop for 0."""
    return max(1, round(seconds) - DAEMON_LOOP_S)


def safe_name(name: str) -> str:
    """The sink name as Dagster allows in definition names."""
    return "".join(c if c.isalnum() else "_" for c in name)
