"""Fixtures of the parity tests: a Kusto client, fresh databases, producing, draining."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from devstack.stack import StackConfig

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]  # key, value, headers


@pytest.fixture
def produce(stack: StackConfig) -> Callable[..., None]:
    """``produce(topic, records, partition=0, timestamp_ms=None)`` of (key, value, headers)."""

    def send(
        topic: str, records: list[Record], partition: int = 0, timestamp_ms: int | None = None
    ) -> None:
        producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 5})
        for key, value, headers in records:
            extra: dict[str, Any] = {"timestamp": timestamp_ms} if timestamp_ms else {}
            producer.produce(
                topic, value=value, key=key, headers=headers, partition=partition, **extra
            )
        assert producer.flush(30) == 0

    return send


@pytest.fixture
def settings_file(tmp_path: Path, stack: StackConfig) -> Callable[..., Path]:
    """``settings_file(name, mappings, **overrides)``: a YAML settings file for the stack."""

    def write(name: str, mappings: list[dict[str, object]], **overrides: object) -> Path:
        settings: dict[str, object] = {
            "name": name,
            "kafka": {"bootstrap_servers": stack.bootstrap_servers},
            "kusto": {"ingestion_url": stack.kusto_url},
            "mappings": mappings,
            "tempdir": str(tmp_path / "staging"),
            "flush_size_bytes": 1_000_000,
            **overrides,
        }
        if "topics_regex" not in settings and "topics" not in settings:
            settings["topics"] = sorted({str(m["topic"]) for m in mappings})
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    return write
