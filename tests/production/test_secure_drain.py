"""Production shape end to end: secured Kafka, a Kusto that demands Azure AD tokens, Dagster
on PostgreSQL with concurrent runs, every record exactly once, and no secret anywhere.

The drain runs as a deployment runs it: `dagster-daemon` on the project's
dagster_postgres.yaml, whose lag sensor plans the lagging partitions into runs of at most
eight, and whose queued run coordinator launches those runs at the same time.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pytest
import yaml
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from confluent_kafka import Producer
from cryptography.hazmat.primitives import serialization

# One daemon helper for the production tests: the concurrency test's.
from test_daemon_postgres import overlapping

from devstack.dagster_daemon import dagster_daemon
from devstack.identity import unsigned_token
from devstack.kafka import create_topic
from devstack.kafka_security import SASL_USER, SecureKafka
from devstack.secured_kusto import SecuredKusto
from devstack.stack import StackConfig
from pipelines.config import load_settings
from pipelines.jobs import SINK_TAG
from pipelines.plan import PartitionState, TopicPartition
from pipelines.preflight import preflight
from pipelines.runtime import SinkRuntime
from sensors.lag import IN_FLIGHT

pytestmark = [
    pytest.mark.stack,
    # PyPI has no dagster-postgres 0.29.28 for dagster 1.13.28 yet; 0.29.27 works but warns.
    pytest.mark.filterwarnings("ignore:Found version mismatch:UserWarning"),
]

RECORDS = 3000
PARTITIONS = 9  # the lag sensor puts at most eight partitions in a run: two runs
# Recognisable, so the grep can find leaks.
KUSTO_SECRET = "kusto-client-secret-7Yq2"
KEY_PASSPHRASE = "client-key-passphrase-Zr81"
# Drained in about a minute on an idle machine; the margin is for a loaded one.
DEADLINE_S = 240
# The signature of an Azure Storage SAS token, whichever resource and expiry it is for.
SAS_SIGNATURE = re.compile(r"\bsig=[A-Za-z0-9%+/]{20,}")


def kafka_security_settings(broker: SecureKafka, listener: str, home: Path) -> dict[str, object]:
    if listener == "ssl":  # mutual TLS, with the client's key protected by a passphrase
        key = serialization.load_pem_private_key(broker.client_key.read_bytes(), password=None)
        protected = home / "client-protected.key"
        protected.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode()),
            )
        )
        return {
            "protocol": "SSL",
            "ssl_ca_location": str(broker.ca_pem),
            "ssl_certificate_location": str(broker.client_certificate),
            "ssl_key_location": str(protected),
            "ssl_key_password": "${env:SINK_KEY_PASSPHRASE}",
        }
    return {
        "protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": SASL_USER,
        "sasl_password": "${env:SINK_KAFKA_PASSWORD}",
        "ssl_ca_location": str(broker.ca_pem),
    }


def test_requests_without_a_token_for_the_cluster_are_refused(secured_kusto: SecuredKusto):
    body = {"db": "NetDefaultDB", "csl": ".show databases"}
    mgmt = f"{secured_kusto.url}/v1/rest/mgmt"
    verify = str(secured_kusto.ca_pem)
    foreign = unsigned_token("https://someone-else.kusto.windows.net", "intruder")
    for headers, reason in [
        ({}, "Bearer"),
        ({"Authorization": f"Bearer {foreign}"}, "audience"),
    ]:
        answer = httpx.post(mgmt, json=body, headers=headers, verify=verify)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "Unauthorized"
        assert reason in answer.json()["error"]["@message"]
    token = unsigned_token(secured_kusto.audience, "admin")
    answer = httpx.post(
        mgmt, json=body, headers={"Authorization": f"Bearer {token}"}, verify=verify
    )
    assert answer.status_code == 200


def ingestion_resource_paths(client: KustoClient) -> set[str]:
    rows = client.execute_mgmt(None, ".get ingestion resources").primary_results[0]
    return {urlsplit(row["StorageRoot"]).path for row in rows}


def test_the_secured_emulator_has_ingestion_queues_of_its_own(
    stack: StackConfig, secured_kusto: SecuredKusto, monkeypatch: pytest.MonkeyPatch
):
    """Both emulators use the stack's Azurite: shared queues would let one emulator take the
    other's ingestions and fail them (their databases are not its own)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(secured_kusto.ca_pem))
    stacks = KustoClient(KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url))
    secured = ingestion_resource_paths(secured_kusto.admin_client())
    assert len(secured) == 5
    assert secured.isdisjoint(ingestion_resource_paths(stacks))


@pytest.mark.parametrize("listener", ["sasl_ssl", "ssl"])
def test_drain_secured_kafka_into_token_kusto_on_postgres(
    secure_kafka: SecureKafka,
    secured_kusto: SecuredKusto,
    dagster_postgres_home: Path,
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    listener: str,
):
    pytest.importorskip("dagster_postgres", reason="needs the production extra (dagster-postgres)")
    # Python's TLS clients (Kusto SDK, MSAL) trust the test CA; secrets come from env refs.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(secured_kusto.ca_pem))
    monkeypatch.setenv("SINK_KAFKA_PASSWORD", secure_kafka.password)
    monkeypatch.setenv("SINK_KUSTO_SECRET", KUSTO_SECRET)
    monkeypatch.setenv("SINK_KEY_PASSPHRASE", KEY_PASSPHRASE)

    topic = unique_name
    create_topic(secure_kafka.bootstrap("internal"), topic, PARTITIONS)
    producer = Producer({"bootstrap.servers": secure_kafka.bootstrap("internal")})
    for i in range(RECORDS):
        value = json.dumps({"id": i, "kind": ("a", "b", "c")[i % 3]}).encode()
        producer.produce(topic, value, partition=i % PARTITIONS)
    assert producer.flush(30) == 0
    kusto = secured_kusto.admin_client()
    kusto.execute_mgmt(None, f".create database {unique_name} ifnotexists")
    kusto.execute_mgmt(unique_name, ".create table Events (id:long, kind:string)")

    settings_file = tmp_path / "sink.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "name": unique_name,
                "kafka": {
                    "bootstrap_servers": secure_kafka.bootstrap(listener),
                    "security": kafka_security_settings(secure_kafka, listener, tmp_path),
                },
                "kusto": {
                    "ingestion_url": secured_kusto.url,
                    "auth": {
                        "strategy": "application",
                        "tenant": "contoso-tenant",
                        "client_id": "kusto-sink-app",
                        "client_secret": "${env:SINK_KUSTO_SECRET}",
                        "authority_host": secured_kusto.authority_host,
                    },
                },
                "topics": [topic],
                "mappings": [
                    {"topic": topic, "db": unique_name, "table": "Events", "format": "multijson"}
                ],
                "value_converter": {"kind": "json"},
                "flush_size_bytes": 20_000,  # one batch per range: each is a queued round trip
                # Every lagging partition is the lag sensor's at once; runs stop following
                # their partitions a second after the last record.
                "lag_threshold_records": 1,
                "flush_interval_ms": 1000,
                "tempdir": str(tmp_path / "staging"),
            }
        )
    )

    settings = load_settings(settings_file)
    instance = dg.DagsterInstance.get()  # the schema first, from one process
    with SinkRuntime(settings) as runtime:
        assert preflight(runtime) == [], "the sink logs in to Kafka and Kusto"
        with dagster_daemon(dagster_postgres_home, settings_file) as daemon_log:
            states = wait_until_drained(runtime, instance, settings.name, daemon_log)
    assert [s.committed for s in states.values()] == [s.high for s in states.values()], states
    assert sum(s.high for s in states.values()) == RECORDS

    counts = kusto.execute_query(unique_name, "Events | summarize n=count(), ids=dcount(id)")
    row = counts.primary_results[0][0]
    assert (row["n"], row["ids"]) == (RECORDS, RECORDS), "every record exactly once"
    records = instance.get_run_records(dg.RunsFilter(tags={SINK_TAG: settings.name}))
    succeeded = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
    assert len(succeeded) >= 2, [(r.dagster_run.run_id[:8], r.dagster_run.status) for r in records]
    assert overlapping(succeeded), "the queued run coordinator ran the runs at the same time"
    instance.dispose()

    logs = (*secured_kusto.log_files, *secure_kafka.home.glob("*.log"))
    places = places_to_search(dagster_postgres_home, capfd.readouterr(), logs)
    assert "postgres table runs" in places and "postgres table event_logs" in places
    for secret in (secure_kafka.password, KUSTO_SECRET, KEY_PASSPHRASE):
        assert [place for place, text in places.items() if secret in text] == []
    # Where, not what: a failing assertion must not print the tokens either.
    assert [place for place, text in places.items() if SAS_SIGNATURE.search(text)] == []


def wait_until_drained(
    runtime: SinkRuntime, instance: dg.DagsterInstance, sink: str, daemon_log: Path
) -> dict[TopicPartition, PartitionState]:
    """Partition states once every offset is committed and no run of ``sink`` is in flight."""
    deadline = time.monotonic() + DEADLINE_S
    in_flight = dg.RunsFilter(tags={SINK_TAG: sink}, statuses=IN_FLIGHT)
    while True:
        states = runtime.partition_states()
        committed = all(s.committed == s.high for s in states.values())
        if committed and not instance.get_runs(filters=in_flight):
            return states
        if time.monotonic() > deadline:
            tail = daemon_log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"not drained in {DEADLINE_S} s: {states}\n{tail}")
        time.sleep(1)


def places_to_search(
    home: Path, captured: pytest.CaptureResult[str], logs: tuple[Path, ...]
) -> dict[str, str]:
    """Every place a secret could leak to, by name: Dagster's tables (runs with their config
    and tags, event logs with metadata and errors), files under DAGSTER_HOME (the daemon's
    log, compute logs), the test's output, and the logs of the servers the sink talked to."""
    places: dict[str, str] = {
        "stdout": captured.out,
        "stderr": captured.err,
        **{str(log): log.read_text(errors="replace") for log in logs},
        **{
            str(path): path.read_text(errors="replace")
            for path in home.rglob("*")
            if path.is_file()
        },
    }
    import psycopg2  # comes with dagster-postgres, whose absence skips the test

    dsn = os.environ["DAGSTER_POSTGRES_URL"].replace("+psycopg2", "")
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'select * from "{table}"')
            places[f"postgres table {table}"] = repr(cursor.fetchall())
    return places
