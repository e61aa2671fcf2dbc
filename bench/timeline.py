"""Where a drain's or the sensors' time went, from the event log of the Dagster instance.

The event log times a run's launch (``RUN_STARTING``: the daemon hands it to the code
server; ``RUN_START``: the new run process has imported Dagster and the sink and loaded the
definitions), each step process's start (``STEP_WORKER_STARTING`` to
``STEP_WORKER_STARTED``, with ``--workers`` > 1) and each step's work (``STEP_START`` to
``STEP_SUCCESS``), which splits wall time into orchestration and the sink's own work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_WANTED = {
    "RUN_STARTING",
    "RUN_START",
    "RUN_SUCCESS",
    "RUN_FAILURE",
    "STEP_WORKER_STARTING",
    "STEP_WORKER_STARTED",
    "STEP_START",
    "STEP_SUCCESS",
}


def drain_timeline(home: Path, launched_at: float, ended_at: float) -> dict[str, Any]:
    """Seconds spent before the first run, in runs, starting step processes and in steps.

    ``launched_at`` and ``ended_at`` are the wall-clock times (``time.time()``) at which the
    drain process was started and ended.
    """
    import dagster as dg

    with _home(home):
        times = _event_times(dg.DagsterInstance.from_config(str(home)))
    runs = {run_id for run_id, _, _ in times}
    starts = [t for (_, kind, _), t in times.items() if kind == "RUN_START"]
    ends = [t for (_, kind, _), t in times.items() if kind in ("RUN_SUCCESS", "RUN_FAILURE")]
    spawn, work = [], []
    for (run_id, kind, step), began in times.items():
        if kind == "STEP_WORKER_STARTING":
            started = times.get((run_id, "STEP_WORKER_STARTED", step))
            if started is not None:
                spawn.append(started - began)
        elif kind == "STEP_START" and step and step.startswith("deliver"):
            done = times.get((run_id, "STEP_SUCCESS", step))
            if done is not None:
                work.append(done - began)
    return {
        "runs": len(runs),
        "before_first_run_s": _r(min(starts) - launched_at) if starts else None,
        "in_runs_s": _r(sum(e - s for s, e in zip(sorted(starts), sorted(ends), strict=False))),
        "after_last_run_s": _r(ended_at - max(ends)) if ends else None,
        "step_process_start_s": {"count": len(spawn), "mean": _mean(spawn), "max": _max(spawn)},
        "deliver_step_s": {"count": len(work), "mean": _mean(work), "max": _max(work)},
    }


def runs_timeline(home: Path) -> dict[str, Any]:
    """How the sensors' runs spent their time before delivering, mean and max over runs:
    in the queue (created to ``RUN_STARTING``), launching (to ``RUN_START``) and setting up
    (to the first step's start)."""
    import dagster as dg

    with _home(home):
        instance = dg.DagsterInstance.from_config(str(home))
        created = {
            record.dagster_run.run_id: record.create_timestamp.timestamp()
            for record in instance.get_run_records()
        }
        times = _event_times(instance)
    queued, launch, setup = [], [], []
    for run_id, began in created.items():
        starting = times.get((run_id, "RUN_STARTING", None))
        started = times.get((run_id, "RUN_START", None))
        first_step = min(
            (t for (r, kind, _), t in times.items() if r == run_id and kind == "STEP_START"),
            default=None,
        )
        if starting is not None:
            queued.append(starting - began)
        if starting is not None and started is not None:
            launch.append(started - starting)
        if started is not None and first_step is not None:
            setup.append(first_step - started)
    return {
        "runs": len(created),
        **{
            f"{name}_s": {"mean": _mean(values), "max": _max(values)}
            for name, values in (("queued", queued), ("launch", launch), ("setup", setup))
        },
    }


def _r(value: float) -> float:
    return round(value, 2)


def _mean(values: list[float]) -> float | None:
    return _r(sum(values) / len(values)) if values else None


def _max(values: list[float]) -> float | None:
    return _r(max(values)) if values else None


@contextmanager
def _home(home: Path) -> Iterator[None]:
    # The project's dagster.yaml names its storage folder through $DAGSTER_HOME.
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = previous


def _event_times(instance: Any) -> dict[tuple[str, str, str | None], float]:
    """First time of each wanted event, by run, event type and step."""
    times: dict[tuple[str, str, str | None], float] = {}
    with instance:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None or event.event_type.name not in _WANTED:
                    continue
                key = (run.run_id, event.event_type.name, event.step_key)
                times.setdefault(key, entry.timestamp)
    return times
