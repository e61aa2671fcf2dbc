"""The status sensor: on each tick, every topic's partitions and delivery counters as an
asset observation on ``kafka/<topic>``, so the asset's Plots tab draws them over time.

One asset per topic, not per topic-partition: the asset graph stays one node per topic
(next to the tables it feeds), and the Plots tab shows each partition's series side by
side, named ``lag_records[2]`` and so on, under the topic's totals. The counters are
running totals kept in the sensor's cursor (:class:`pipelines.metrics.Totals`), updated
from the delivery observations recorded since the last tick.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from pipelines import metrics
from pipelines.config import SinkSettings
from pipelines.runtime import SinkRuntime
from pipelines.status import SinkStatus, sink_status
from sensors.lag import safe_name

STATUS_EVENT = "status"


def topic_metadata(status: SinkStatus, topic: str) -> dict[str, Any]:
    """Totals of the topic, then each partition's numbers, as plottable metadata."""
    lag = status.lag(topic)
    metadata: dict[str, Any] = {
        "event": STATUS_EVENT,
        "lag_records": lag.records,
        "lag_bytes": lag.bytes,
        "oldest_undelivered_age_s": round(lag.oldest_age_s or 0.0, 1),
        **{f"total_{k}": v for k, v in status.totals.total(topic).as_dict().items()},
    }
    for s in status.of_topic(topic):
        p = s.topic_partition.partition
        counters = status.totals.of(s.topic_partition)
        metadata |= {
            f"committed[{p}]": -1 if s.committed is None else s.committed,
            f"high_watermark[{p}]": s.high,
            f"lag_records[{p}]": s.lag_records,
            f"lag_bytes[{p}]": s.lag_bytes,
            f"oldest_undelivered_age_s[{p}]": round(s.oldest_age_s or 0.0, 1),
            f"records_written[{p}]": counters.records_written,
            f"records_failed[{p}]": counters.records_failed,
        }
    return metadata


def build_status_sensor(settings: SinkSettings, interval_seconds: int = 30) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{safe_name(settings.name)}_status",
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Record each topic's lag, age of the oldest undelivered record and "
        "delivery counters on its kafka/<topic> asset (see its Plots tab)",
    )
    def _status(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        totals = metrics.Totals.from_json(cursor)
        with SinkRuntime(settings) as runtime:
            status = sink_status(runtime, context.instance, totals)
        observations = [
            dg.AssetObservation(
                asset_key=metrics.kafka_asset_key(topic),
                description="lag and delivery counters",
                metadata=topic_metadata(status, topic),
            )
            for topic in status.topics()
        ]
        return dg.SensorResult(asset_events=observations, cursor=json.dumps(totals.to_json()))

    return _status
