"""On the local stack: the Prometheus endpoint's counters match Kusto's rows, lag is live."""

from __future__ import annotations

import dagster as dg
import httpx
import pytest
from parity_helpers import note_table, notes, rows
from prometheus_client.parser import text_string_to_metric_families

from devstack.process import free_port
from pipelines.config import load_settings
from pipelines.definitions import build_definitions
from pipelines.jobs import run_config
from pipelines.prometheus import serve
from pipelines.runtime import SinkRuntime

pytestmark = pytest.mark.stack


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics summed over its labels, by sample name."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def test_the_endpoint_serves_connect_and_lag_exporter_metrics_matching_kusto(
    stack, kusto, kusto_db, make_topic, produce, settings_file
) -> None:
    topic, dlq = make_topic(partitions=2), make_topic(partitions=1)
    note_table(kusto, kusto_db, "Notes")
    produce(topic, notes(0, 30), partition=0)
    produce(topic, notes(30, 20) + [(None, b"{not json", None)], partition=1)
    path = settings_file(
        topic,
        [{"topic": topic, "db": kusto_db, "table": "Notes", "format": "json", "mapping": "notes"}],
        behavior_on_error="log",
        dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": dlq},
    )
    settings = load_settings(path)
    defs = build_definitions(str(path))
    with SinkRuntime(settings) as runtime:
        ranges = runtime.plan()
    with dg.instance_for_test() as instance:
        result = defs.get_job_def("deliver_ranges").execute_in_process(
            run_config=run_config(ranges), instance=instance, resources=defs.resources
        )
        assert result.success
        produce(topic, notes(100, 4), partition=0)  # not delivered: lag
        port = free_port()
        server, collector = serve(settings, instance, port=port)
        try:
            metrics = scrape(port)
        finally:
            server.shutdown()
            collector.close()
    in_kusto = rows(kusto, kusto_db, "Notes | count")[0]["Count"]
    assert in_kusto == 50
    assert metrics["kafka_connect_sink_task_sink_record_send_total"] == in_kusto
    assert metrics["kusto_sink_recordswritten_total"] == in_kusto
    assert metrics["kafka_connect_sink_task_sink_record_read_total"] == 51
    assert metrics["kafka_connect_task_error_total_record_failures_total"] == 1
    assert metrics["kafka_connect_task_error_deadletterqueue_produce_requests_total"] == 1
    assert metrics["kusto_sink_dlqrecordssent_total"] == 1
    assert metrics["kusto_sink_ingestionfailures_total"] == 0
    assert metrics["kafka_connect_sink_task_offset_commit_completion_total"] == len(ranges)
    assert metrics["kafka_connect_task_error_total_records_skipped_total"] == 0
    assert metrics["kafka_consumergroup_group_lag"] == 4
    assert metrics["kafka_consumergroup_group_sum_lag"] == 4
    assert metrics["kafka_consumergroup_group_max_lag"] == 4
    assert metrics["kafka_consumergroup_group_offset"] == 51
    assert metrics["kafka_consumergroup_group_lag_seconds"] > 0
