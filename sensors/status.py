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
from pipelines.status import PartitionStatus, partition_statuses
from sensors.lag import safe_name

STATUS_EVENT = "status"


def topic_metadata(
    statuses: list[PartitionStatus], totals: metrics.Totals, topic: str
) -> dict[str, Any]:
    """Totals of the topic, then each partition's numbers, as plottable metadata."""
    mine = [s for s in statuses if s.topic_partition.topic == topic]
    ages = [s.oldest_age_s for s in mine if s.oldest_age_s is not None]
    metadata: dict[str, Any] = {
        "event": STATUS_EVENT,
        "lag_records": sum(s.lag_records for s in mine),
        "lag_bytes": sum(s.lag_bytes for s in mine),
        "oldest_undelivered_age_s": round(max(ages), 1) if ages else 0.0,
        **{f"total_{k}": v for k, v in totals.total(topic).as_dict().items()},
    }
    for s in mine:
        p = s.topic_partition.partition
        counters = totals.by_partition.get(s.topic_partition, metrics.Counters())
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
    reset = settings.kafka.auto_offset_reset

    @dg.sensor(
        name=f"{safe_name(settings.name)}_status",
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Record each topic's lag, age of the oldest undelivered record and "
        "delivery counters on its kafka/<topic> asset (see its Plots tab)",
    )
    def _status(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        totals = (
            metrics.Totals.from_json(json.loads(context.cursor))
            if context.cursor
            else metrics.Totals({})
        )
        with SinkRuntime(settings) as runtime:
            states = runtime.partition_states()
            statuses = partition_statuses(runtime.consumer, states, reset)
        topics = sorted({tp.topic for tp in states})
        metrics.add_new_deliveries(context.instance, topics, totals)
        observations = [
            dg.AssetObservation(
                asset_key=metrics.kafka_asset_key(topic),
                description="lag and delivery counters",
                metadata=topic_metadata(statuses, totals, topic),
            )
            for topic in topics
        ]
        return dg.SensorResult(asset_events=observations, cursor=json.dumps(totals.to_json()))

    return _status
