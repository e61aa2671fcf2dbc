"""Sensors and run retries as they run in production: under `dagster-daemon`.

Run retries (`FROM_FAILURE`) exist only in the daemon, so this test starts a real one on a
temporary instance, lets the sensors launch the runs, makes the first run fail for good
(Kusto's management endpoint answers 503 until it has), and checks that the daemon's
retry run delivers every record exactly once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from devstack.dagster_daemon import start_daemon, stop_daemon
from pipelines.config import load_settings
from pipelines.jobs import SINK_TAG
from pipelines.runtime import SinkRuntime
from sensors.lag import IN_FLIGHT

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def wait_for_failed_run(instance: dg.DagsterInstance, sink: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    failed = dg.RunsFilter(tags={SINK_TAG: sink}, statuses=[dg.DagsterRunStatus.FAILURE])
    while not instance.get_runs(filters=failed):
        assert time.monotonic() < deadline, "no run failed while Kusto answered 503"
        time.sleep(1)


def test_sensor_runs_and_a_run_retry_deliver_everything_once(
    stack, kusto, kusto_db, json_events, tmp_path, monkeypatch
):
    topic, path = json_events(
        2,
        400,
        flush_interval_ms=1000,
        # Two step retries a few hundred ms apart: the injected failures outlast them.
        retry={"max_time_ms": 1500, "backoff_ms": 300},
    )
    # Kusto's management endpoint answers 503 until the first run has failed for good:
    # in-step retries, step retries and all.
    faults = f"{stack.kusto_url}/emulator/faults"
    httpx.post(
        faults,
        json={"kind": "http", "endpoint": "mgmt", "status": 503, "for_seconds": 600},
    ).raise_for_status()

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # Create the instance's SQLite storage before the daemon opens it too: two processes
    # creating it at once race on its schema migrations.
    instance = dg.DagsterInstance.get()
    daemon = start_daemon(home, path, home / "daemon.log")
    try:
        wait_for_failed_run(instance, topic, timeout=150)
        httpx.delete(faults).raise_for_status()
        deadline = time.monotonic() + 180
        with SinkRuntime(load_settings(path)) as runtime:
            while time.monotonic() < deadline:
                rows = kusto.execute_query(kusto_db, "Events | count").primary_results[0]
                count = rows[0]["Count"]
                states = runtime.partition_states()
                settled = not instance.get_runs(
                    filters=dg.RunsFilter(tags={SINK_TAG: topic}, statuses=IN_FLIGHT)
                )
                done = count >= 400 and all(s.committed == s.high for s in states.values())
                if done and settled:
                    break
                time.sleep(2)
    finally:
        stop_daemon(daemon)
    log = (home / "daemon.log").read_text(errors="replace")[-3000:]
    assert count == 400, log
    assert all(s.committed == s.high for s in states.values()), states

    ids = kusto.execute_query(kusto_db, "Events | summarize dcount(id)").primary_results[0]
    assert ids[0][0] == 400, "no duplicate rows"
    runs = instance.get_runs(filters=dg.RunsFilter(tags={SINK_TAG: topic}))
    instance.dispose()
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    retries = [r for r in runs if r.tags.get("dagster/parent_run_id")]
    assert failed, "the injected failures should have failed the first run"
    assert any(r.status == dg.DagsterRunStatus.SUCCESS for r in retries), [
        (r.run_id[:8], r.status, r.tags.get("dagster/parent_run_id")) for r in runs
    ]
