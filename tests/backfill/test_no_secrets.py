"""No secret reaches what Dagster stores and shows: resource config, run config, run tags,
schedule requests. Secrets stay `${env:...}` references resolved in the run's process."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import yaml

from pipelines.backfill_job import backfill_run_config, backfill_run_tags
from pipelines.definitions import build_definitions
from pipelines.jobs import run_config, run_tags
from pipelines.plan import OffsetRange
from sensors.backfill_schedules import SCHEDULES_ENV, load_schedules, run_requests

SECRETS = {"H8_KUSTO_APP_KEY": "kusto-app-key-0123", "H8_KAFKA_PASSWORD": "kafka-pass-4567"}


def test_run_config_tags_and_resources_carry_no_secret(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = {
        "name": "shop",
        "kafka": {
            "bootstrap_servers": "broker.example.com:9093",
            "security": {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "sink",
                "sasl_password": "${env:H8_KAFKA_PASSWORD}",
            },
        },
        "kusto": {
            "ingestion_url": "https://ingest-shop.westeurope.kusto.windows.net",
            "auth": {
                "strategy": "application",
                "tenant": "contoso.onmicrosoft.com",
                "client_id": "0000-app",
                "client_secret": "${env:H8_KUSTO_APP_KEY}",
            },
        },
        "topics": ["orders"],
        "mappings": [{"topic": "orders", "db": "sales", "table": "Orders", "format": "json"}],
        "value_converter": {"kind": "json"},
    }
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(settings))
    schedules = tmp_path / "backfills.yaml"
    schedules.write_text(
        yaml.safe_dump([{"name": "audit", "cron": "5 * * * *", "topic": "orders", "table": "A"}])
    )
    monkeypatch.setenv(SCHEDULES_ENV, str(schedules))

    defs = build_definitions(str(path))
    rng = OffsetRange("orders", 2, 1000, 2000)
    (schedule,) = load_schedules()
    requests = run_requests(schedule, defs.resources["sink"].settings, [0, 2], datetime.now(UTC))
    shown = [
        defs.resources["sink"].model_dump(),
        run_config([rng]),
        run_tags("shop", [rng]),
        backfill_run_config(rng, "A"),
        backfill_run_tags("shop", rng, "A"),
        *(r.run_config for r in requests),
        *(r.tags for r in requests),
    ]
    text = repr(shown)
    assert "shop.yaml" in text  # only the path of the settings travels
    for secret in SECRETS.values():
        assert secret not in text
    assert isinstance(defs.resolve_job_def("backfill"), dg.JobDefinition)
