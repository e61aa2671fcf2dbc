"""Fixtures of the backfill tests: a Kusto client and a topic the live sink delivered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from backfill_data import PARTITIONS, RECORDS, Delivered, create_table, ids_in, record_time
from confluent_kafka import Producer

from pipelines.config import load_settings
from pipelines.runtime import SinkRuntime


@pytest.fixture
def delivered(stack, kusto, make_topic, unique_name, tmp_path) -> Delivered:
    topic = make_topic(partitions=PARTITIONS)
    db = unique_name
    kusto.execute_mgmt(None, f".create database {db} ifnotexists")
    create_table(kusto, db, "Events")
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})
    for i in range(RECORDS):
        at = record_time(i)
        value = json.dumps({"id": i, "at": at.isoformat()}).encode()
        producer.produce(
            topic, value=value, partition=i % PARTITIONS, timestamp=int(at.timestamp() * 1000)
        )
    assert producer.flush(30) == 0

    def write_settings(file_name: str, **overrides: object) -> Path:
        settings = {
            "name": topic,
            "kafka": {"bootstrap_servers": stack.bootstrap_servers},
            "kusto": {"ingestion_url": stack.kusto_url},
            "topics": [topic],
            "mappings": [
                {"topic": topic, "db": db, "table": "Events", "format": "json", "mapping": "ids"}
            ],
            "value_converter": {"kind": "json"},
            # About 50 records a batch: ranges of 300 records become several batches.
            "flush_size_bytes": 2_500,
            "tempdir": str(tmp_path / "staging"),
            **overrides,
        }
        path = tmp_path / f"{file_name}.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    path = write_settings("live")
    with SinkRuntime(load_settings(path)) as runtime:
        for rng in runtime.plan():
            runtime.deliver(rng)
    assert ids_in(kusto, db, "Events") == list(range(RECORDS))
    return Delivered(topic, db, path, write_settings)
