"""Fixtures of the production tests: a secured side broker on its own ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import kafka_security
from devstack.process import free_port, start, stop, wait_healthy
from devstack.stack import StackConfig


@pytest.fixture(scope="session")
def secure_kafka(
    stack: StackConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kafka_security.SecureKafka]:
    """The secured broker (SSL, SASL_PLAINTEXT, SASL_SSL listeners), started for this session.

    Certificates, users and data live in a temporary dir; the Kafka jars are the stack's.
    """
    home = tmp_path_factory.mktemp("kafka-secure")
    ports = kafka_security.SecurePorts(*(free_port() for _ in range(5)))
    broker = kafka_security.load_or_create(home, ports)
    server = kafka_security.secure_kafka_server(broker, stack.kafka_lib_dir, home / "kafka.log")
    run_dir = Path(home) / "run"
    running = start(server, run_dir)
    try:
        wait_healthy(server, running)
        yield broker
    finally:
        stop(run_dir, server.name, server.stop_timeout)
