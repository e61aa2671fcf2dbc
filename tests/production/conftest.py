"""Fixtures of the production tests: a secured side broker on its own ports."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack import kafka_security, postgres
from devstack.process import Server, free_port, start, stop, wait_healthy
from devstack.secured_kusto import SecuredKusto, secured_kusto_servers
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
    with _running(server, home / "run"):
        yield broker


@contextmanager
def _running(server: Server, run_dir: Path) -> Iterator[None]:
    running = start(server, run_dir)
    try:
        wait_healthy(server, running)
        yield
    finally:
        stop(run_dir, server.name, server.stop_timeout)


# Module scope: this second emulator shares Azurite, and with it the ingestion queue, with
# the stack's emulator; alive while other tests ingest, it would take their batches.
@pytest.fixture(scope="module")
def secured_kusto(
    stack: StackConfig,
    secure_kafka: kafka_security.SecureKafka,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecuredKusto]:
    home = tmp_path_factory.mktemp("secured-kusto")
    described, servers = secured_kusto_servers(
        home,
        stack.storage_connection_string,
        free_port(),
        free_port(),
        secrets.token_hex(8),
        secure_kafka.server_certificate,
        secure_kafka.server_key,
        secure_kafka.ca_pem,
    )
    identity, emulator = servers
    with _running(identity, home / "run"), _running(emulator, home / "run"):
        yield described


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of Debian's package on a free loopback port, for this session."""
    if postgres.binaries() is None:
        pytest.skip("PostgreSQL binaries not found: apt-get install -y postgresql")
    # Not under pytest's temp root: that is private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="kusto-sink-postgres-"))
    home.chmod(0o755)
    port = free_port()
    server = postgres.postgres_server(home / "cluster", home / "postgres.log", port)
    try:
        with _running(server, home / "run"):
            yield postgres.url(port)
    finally:
        shutil.rmtree(home, ignore_errors=True)
