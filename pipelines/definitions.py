"""The Dagster Definitions that workspace.yaml loads.

The sink's settings file is named by ``KUSTO_SINK_CONFIG`` (YAML, or a Kafka Connect
.properties/.json file). Its topics and tables become assets, its retry settings the
step retry policy, its flush interval the interval sensor's tick. Scheduled backfills are
listed in the file named by ``KUSTO_SINK_BACKFILL_SCHEDULES`` (see
:mod:`sensors.backfill_schedules`).
"""

from __future__ import annotations

import dagster as dg

from pipelines.backfill_job import build_backfill_job
from pipelines.config import SinkSettings, config_path, load_settings
from pipelines.jobs import build_job, kusto_asset_key
from pipelines.metrics import kafka_asset_key
from pipelines.reconcile_job import (
    build_reconcile_checks,
    build_reconcile_job,
    build_reconcile_schedule,
)
from resources.sink import SinkResource
from sensors.backfill_schedules import build_backfill_schedule, load_schedules
from sensors.lag import build_sensors
from sensors.status import build_status_sensor


def asset_specs(settings: SinkSettings) -> list[dg.AssetSpec]:
    """Kafka topics and the Kusto tables they feed, so the UI draws the lineage."""
    topics = {m.topic for m in settings.mappings if m.topic != "*"} | set(settings.topics or [])
    tables: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for mapping in settings.mappings:
        sources = [mapping.topic] if mapping.topic != "*" else sorted(topics)
        key = kusto_asset_key(mapping.db, mapping.table)
        tables.setdefault(key, set()).update(kafka_asset_key(t) for t in sources)
    return [
        *(
            dg.AssetSpec(kafka_asset_key(t), description=f"Kafka topic {t}", group_name="kafka")
            for t in sorted(topics)
        ),
        *(
            dg.AssetSpec(
                key,
                deps=sorted(deps, key=lambda k: k.to_user_string()),
                description=f"Kusto table {'.'.join(key.path[1:])}; each batch a materialization",
                group_name="kusto",
            )
            for key, deps in tables.items()
        ),
    ]


def build_definitions(config_path: str) -> dg.Definitions:
    settings = load_settings(config_path)
    job = build_job(settings)
    assets = asset_specs(settings)
    reconcile_job = build_reconcile_job()
    backfill_job = build_backfill_job(settings)
    return dg.Definitions(
        assets=assets,
        asset_checks=[build_reconcile_checks([a.key for a in assets if a.key.path[0] == "kusto"])],
        jobs=[job, backfill_job, reconcile_job],
        sensors=[*build_sensors(settings, job), build_status_sensor(settings)],
        schedules=[
            build_reconcile_schedule(reconcile_job),
            *(build_backfill_schedule(s, settings, backfill_job) for s in load_schedules()),
        ],
        resources={"sink": SinkResource(config_path=config_path)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` loads: the sink named by $KUSTO_SINK_CONFIG (loaded lazily)."""
    return build_definitions(str(config_path()))
