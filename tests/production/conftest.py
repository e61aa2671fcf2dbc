"""Fixtures of the production tests: a secured side broker on its own ports, a secured
Kusto emulator, PostgreSQL for Dagster."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack import kafka_security, postgres
from devstack.process import Server, free_port, start, stop, wait_healthy
from devstack.secured_kusto import SecuredKusto, secured_kusto_servers
from devstack.stack import StackConfig

REPO = Path(__file__).resolve().parents[2]


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


# Session scope: the second emulator's ingestion queues and containers carry a prefix of their
# own, so it never takes the stack emulator's batches (nor they its).
@pytest.fixture(scope="session")
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
        # A failure, not a skip: .ci/run installs them, so their absence is a broken setup.
        pytest.fail("PostgreSQL binaries not found: apt-get install -y postgresql")
    with postgres.temporary_postgres() as url:
        yield url


@pytest.fixture
def dagster_postgres_home(
    postgres_url: str, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """DAGSTER_HOME with the project's dagster_postgres.yaml, on a database of its own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres.create_database(postgres_url, unique_name))
    return home
