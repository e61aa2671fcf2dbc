"""The sink's Dagster wiring against the real stack: the job, its assets, the sensors."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from e2e_helpers import event

from pipelines.config import load_settings
from pipelines.definitions import build_definitions
from pipelines.errors import KafkaUnavailable
from pipelines.jobs import PARTITIONS_TAG, kusto_asset_key, run_config
from pipelines.runtime import SinkRuntime
from sensors.lag import run_requests

pytestmark = pytest.mark.stack


@pytest.fixture
def events_sink(kusto_db, json_events):
    topic, path = json_events(2, 400)
    return topic, kusto_db, path


def test_job_delivers_ranges_and_materializes_batches(kusto, events_sink):
    topic, db, path = events_sink
    defs = build_definitions(str(path))
    settings = load_settings(path)
    with SinkRuntime(settings) as runtime:
        ranges = runtime.plan()
    with dg.instance_for_test() as instance:
        job = defs.get_job_def("deliver_ranges")
        result = job.execute_in_process(
            run_config=run_config(ranges), instance=instance, resources=defs.resources
        )
        assert result.success
        materializations = result.asset_materializations_for_node("deliver")
        assert {m.asset_key for m in materializations} == {kusto_asset_key(db, "Events")}
        assert sum(m.metadata["rows"].value for m in materializations) == 400
        # A run that does not follow (a drain's) ends with its ranges: no follow step.
        assert result.is_node_skipped("follow")
    count = kusto.execute_query(db, "Events | count").primary_results[0][0]["Count"]
    assert count == 400


def test_a_following_run_delivers_records_that_arrive_after_its_ranges(
    kusto, kusto_db, produce, json_events
):
    topic, path = json_events(2, 200, flush_interval_ms=1000)
    defs = build_definitions(str(path))
    with SinkRuntime(load_settings(path)) as runtime:
        ranges = runtime.plan()
        # Records that arrive after the plan: the run's ranges end before them.
        produce(topic, [event(i) for i in range(200, 300)], partitions=2)
        began = time.monotonic()
        with dg.instance_for_test() as instance:
            result = defs.get_job_def("deliver_ranges").execute_in_process(
                run_config=run_config(ranges, follow_seconds=120),
                instance=instance,
                resources=defs.resources,
            )
        seconds = time.monotonic() - began
        states = runtime.partition_states()
    assert result.success
    followed = result.asset_materializations_for_node("follow")
    assert sum(m.metadata["rows"].value for m in followed) == 100
    assert all(s.committed == s.high == 150 for s in states.values())
    assert seconds < 60, "idle for a flush interval, the run ends long before its 120 s"
    ids = kusto.execute_query(kusto_db, "Events | summarize dcount(id), count()")
    assert list(ids.primary_results[0][0]) == [300, 300]


def test_sensor_plans_lagging_partitions_and_skips_busy_ones(events_sink):
    topic, _, path = events_sink
    settings = load_settings(path)
    defs = build_definitions(str(path))
    with SinkRuntime(settings) as runtime:
        states = runtime.partition_states()
    requests = run_requests(settings, states, busy={f"{topic}[0]"}, trigger=lambda tp, s: True)
    assert [r.tags[PARTITIONS_TAG] for r in requests] == [f"{topic}[1]"]

    (sensor,) = [s for s in defs.sensors if s.name == f"{topic}_interval"]
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert len(result.run_requests) == 1
    ranges = result.run_requests[0].run_config["ops"]["offset_ranges"]["config"]["ranges"]
    assert sorted((r["partition"], r["start"], r["end"]) for r in ranges) == [
        (0, 0, 200),
        (1, 0, 200),
    ]


def test_a_step_retry_delivers_on_fresh_clients_and_skips_what_was_committed(
    kusto, kusto_db, json_events, monkeypatch
):
    topic, path = json_events(2, 200, retry={"max_time_ms": 1000, "backoff_ms": 200})
    defs = build_definitions(str(path))
    with SinkRuntime(load_settings(path)) as runtime:
        ranges = runtime.plan()
    attempts: list[SinkRuntime] = []
    deliver_all = SinkRuntime.deliver_all

    def first_partition_fails_once(self: SinkRuntime, todo: list) -> list:
        attempts.append(self)
        outcomes = deliver_all(self, todo)
        if len(attempts) == 1:
            # The second range reported failed after its commit went through, as when the
            # commit's answer is lost: the retry must find it committed, not deliver it again.
            outcomes[1] = KafkaUnavailable("broker away", topic=topic, partition=todo[1].partition)
        return outcomes

    monkeypatch.setattr(SinkRuntime, "deliver_all", first_partition_fails_once)
    with dg.instance_for_test() as instance:
        job = defs.get_job_def("deliver_ranges")
        result = job.execute_in_process(
            run_config=run_config(ranges), instance=instance, resources=defs.resources
        )
    assert result.success
    assert len(attempts) == 2 and attempts[0] is not attempts[1], "the retry reused clients"
    ids = kusto.execute_query(kusto_db, "Events | summarize count(), dcount(id)")
    assert list(ids.primary_results[0][0]) == [200, 200]
