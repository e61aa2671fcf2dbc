"""An optional Prometheus text endpoint, under the names existing dashboards already query.

Counters use Kafka Connect's sink-task and task-error metric names, and the reference's
``kusto_sink_*`` names, as the Prometheus JMX exporter of the reference's quickstart exposes
them (``kafka_connect_sink_task_<metric>``), one series per topic-partition
(``connector``, ``task`` = ``<topic>-<partition>``, ``topic``, ``partition``); sum them for
the sink's total. The ``kusto_sink_*`` ones are the sink's totals (label ``connector``),
like the reference's one bean per connector. All come from the delivery observations in
the Dagster event log (:mod:`pipelines.metrics`), so they cover every worker and every
run, not only the last task as the reference's JMX bean does. Lag gauges follow
kafka-lag-exporter's names.

=========================================================  ===================================
metric (``_total`` counters)                               source
=========================================================  ===================================
``kafka_connect_sink_task_sink_record_read_total``         records read from Kafka
``kafka_connect_sink_task_sink_record_send_total``         rows confirmed in Kusto
``kafka_connect_task_error_total_record_failures_total``   records dead-lettered or failed
``kafka_connect_task_error_deadletterqueue_produce_``      dead letters written
``requests_total``
``kafka_connect_sink_task_offset_commit_completion_total`` offset commits (one per range)
``kafka_connect_task_error_total_records_skipped_total``   tombstones skipped
``kusto_sink_recordswritten_total``, ``_recordsfailed``,   the reference's KustoSinkMetrics
``_dlqrecordssent``, ``_ingestionattempts``,
``_ingestionsuccesses``, ``_ingestionfailures``
``kafka_consumergroup_group_offset``                       committed offset (gauge)
``kafka_consumergroup_group_lag``                          records behind (gauge)
``kafka_consumergroup_group_lag_seconds``                  age of the oldest undelivered record
``kafka_consumergroup_group_max_lag`` / ``_sum_lag``       per group (gauges)
=========================================================  ===================================

Run it next to the sink (it reads the same ``DAGSTER_HOME``)::

    kusto-sink metrics -c sink.yaml --port 9399     # or: python -m pipelines.prometheus
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import click
import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipelines.cli_options import config_option, dagster_instance, settings_of
from pipelines.config import SinkSettings
from pipelines.metrics import Totals
from pipelines.runtime import SinkRuntime
from pipelines.status import sink_status

_TASK = ("connector", "task", "topic", "partition")
_LAG = ("group", "topic", "partition")
_COUNTERS: list[tuple[str, str, str]] = [
    # (name without _total, help, Counters field)
    ("kafka_connect_sink_task_sink_record_read", "Records read from Kafka", "records_read"),
    ("kafka_connect_sink_task_sink_record_send", "Records written to Kusto", "records_written"),
    (
        "kafka_connect_task_error_total_record_failures",
        "Records that could not be decoded or that Kusto refused",
        "records_failed",
    ),
    (
        "kafka_connect_task_error_deadletterqueue_produce_requests",
        "Records written to a dead-letter topic",
        "dead_lettered",
    ),
    (
        "kafka_connect_sink_task_offset_commit_completion",
        "Offset commits completed",
        "offset_commits",
    ),
    (
        "kafka_connect_task_error_total_records_skipped",
        "Records skipped (tombstones, tombstones: skip)",
        "records_skipped",
    ),
    # the reference's own KustoSinkMetrics bean, as its Grafana dashboards query it
    ("kusto_sink_recordswritten", "Records written to Kusto", "records_written"),
    ("kusto_sink_recordsfailed", "Records failed", "records_failed"),
    ("kusto_sink_dlqrecordssent", "Records written to a dead-letter topic", "dead_lettered"),
    ("kusto_sink_ingestionattempts", "Batches submitted to Kusto", "ingestion_attempts"),
    ("kusto_sink_ingestionsuccesses", "Batches Kusto confirmed", "ingestion_successes"),
    ("kusto_sink_ingestionfailures", "Failed delivery attempts", "ingestion_failures"),
]


class SinkCollector(Collector):
    """Reads counters from the Dagster event log and lag from Kafka at each scrape."""

    def __init__(self, settings: SinkSettings, instance: dg.DagsterInstance) -> None:
        self._settings, self._instance = settings, instance
        self._runtime = SinkRuntime(settings)
        self._totals = Totals({})
        self._lock = threading.Lock()  # scrapes may overlap; the runtime's clients may not

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            status = sink_status(self._runtime, self._instance, self._totals)
        name = self._settings.name
        total = status.totals.total()
        for metric, help_text, field in _COUNTERS:
            if metric.startswith("kusto_sink_"):
                # the reference's bean is one total per connector; so are these
                family = CounterMetricFamily(metric, help_text, labels=("connector",))
                family.add_metric([name], getattr(total, field))
                yield family
                continue
            family = CounterMetricFamily(metric, help_text, labels=_TASK)
            for tp, counters in sorted(status.totals.by_partition.items()):
                labels = [name, f"{tp.topic}-{tp.partition}", tp.topic, str(tp.partition)]
                family.add_metric(labels, getattr(counters, field))
            yield family
        group = self._settings.group_id
        offset = GaugeMetricFamily(
            "kafka_consumergroup_group_offset", "Committed offset", labels=_LAG
        )
        lag = GaugeMetricFamily("kafka_consumergroup_group_lag", "Records behind", labels=_LAG)
        lag_seconds = GaugeMetricFamily(
            "kafka_consumergroup_group_lag_seconds",
            "Age of the oldest record not yet delivered",
            labels=_LAG,
        )
        for partition in status.partitions:
            tp = partition.topic_partition
            labels = [group, tp.topic, str(tp.partition)]
            if partition.committed is not None:
                offset.add_metric(labels, partition.committed)
            lag.add_metric(labels, partition.lag_records)
            lag_seconds.add_metric(labels, partition.oldest_age_s or 0.0)
        yield from (offset, lag, lag_seconds)
        max_lag = max((p.lag_records for p in status.partitions), default=0)
        for metric, value in (("max_lag", max_lag), ("sum_lag", status.lag().records)):
            gauge = GaugeMetricFamily(
                f"kafka_consumergroup_group_{metric}", f"Group {metric}", labels=("group",)
            )
            gauge.add_metric([group], value)
            yield gauge

    def close(self) -> None:
        self._runtime.close()


def serve(
    settings: SinkSettings, instance: dg.DagsterInstance, *, port: int, host: str = "127.0.0.1"
) -> tuple[WSGIServer, SinkCollector]:
    """Serve ``/metrics`` on ``host:port`` from a background thread.

    Stop with ``server.shutdown()`` then ``collector.close()``.
    """
    registry = CollectorRegistry(auto_describe=False)
    collector = SinkCollector(settings, instance)
    registry.register(collector)
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server, collector


@click.command()
@config_option
@click.option("--port", type=int, default=9399, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def metrics(config_file: Path | None, port: int, host: str) -> None:
    """Serve the sink's metrics for Prometheus on http://HOST:PORT/metrics until stopped.

    Counters come from the Dagster instance of $DAGSTER_HOME (default ./dagster_home), lag
    from Kafka.
    """
    settings = settings_of(config_file)
    with dagster_instance() as instance:
        server, collector = serve(settings, instance, port=port, host=host)
        click.echo(f"serving http://{host}:{port}/metrics")
        stop = threading.Event()
        # SIGTERM too: containers and process managers stop services with it
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            while not stop.wait(1):
                pass
        finally:
            server.shutdown()
            collector.close()


if __name__ == "__main__":
    metrics()
