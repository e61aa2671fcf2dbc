"""The sink's Kafka clients against a secured broker: every protocol and SASL mechanism.

Settings come in as the reference connector's Kafka Connect properties (consumer.override.*,
errors.deadletterqueue.*, misc.deadletterqueue.*) and go through the one translation to
librdkafka; the consumer reads and both dead-letter producers write over each listener.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from devstack.kafka import create_topic
from devstack.kafka_security import SASL_USER, SecureKafka
from devstack.stack import StackConfig
from pipelines.config import import_connect
from pipelines.config.kafka_client import kafka_client_config
from pipelines.config.kafka_settings import KafkaConnection
from pipelines.preflight import preflight
from pipelines.runtime import SinkRuntime

pytestmark = pytest.mark.stack

CONNECT_PREFIXES = ("consumer.override.", "errors.deadletterqueue.", "misc.deadletterqueue.")
LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
CASES = [("ssl", "SSL", None)] + [
    (listener, listener.upper(), mechanism)
    for listener in ("sasl_plaintext", "sasl_ssl")
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
]


def java_client_properties(
    broker: SecureKafka, listener: str, mechanism: str | None, password: str | None = None
) -> dict[str, str]:
    """Kafka Java client properties, as a Kafka Connect user writes them for this listener."""
    protocol = listener.upper()
    props = {"bootstrap.servers": broker.bootstrap(listener), "security.protocol": protocol}
    if protocol.endswith("SSL"):
        props |= {"ssl.truststore.location": str(broker.ca_pem), "ssl.truststore.type": "PEM"}
    if protocol == "SSL":
        props |= {
            "ssl.keystore.location": str(broker.client_keystore),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.password": broker.password,
        }
    if mechanism == "OAUTHBEARER":
        props["sasl.mechanism"] = mechanism
        props["sasl.jaas.config"] = (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'unsecuredLoginStringClaim_sub="{SASL_USER}";'
        )
    elif mechanism is not None:
        props["sasl.mechanism"] = mechanism
        props["sasl.jaas.config"] = (
            f'{LOGIN_MODULES[mechanism]} required username="{SASL_USER}" '
            f'password="{password or broker.password}";'
        )
    return props


def connect_config(
    broker: SecureKafka, kusto_url: str, listener: str, mechanism: str | None, **extra: str
) -> dict[str, str]:
    """A Kafka Connect config of the sink whose consumer and dead-letter producers all use
    ``listener``."""
    props = {
        "name": "secure-sink",
        "topics": "orders",
        "kusto.ingestion.url": kusto_url,
        "kusto.tables.topics.mapping": '[{"topic":"orders","db":"db","table":"T","format":"json"}]',
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "behavior.on.error": "log",
        "errors.deadletterqueue.topic.name": "orders-dlq",
        "misc.deadletterqueue.topic.name": "orders-misc-dlq",
    }
    client = java_client_properties(broker, listener, mechanism, extra.pop("password", None))
    for prefix in CONNECT_PREFIXES:
        props |= {f"{prefix}{key}": value for key, value in client.items()}
    return props | extra


def read_one(connection: KafkaConnection, topic: str) -> bytes:
    consumer = Consumer(
        kafka_client_config(connection, consumer=True) | {"group.id": "security-test"}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                return message.value()
    finally:
        consumer.close()
    raise AssertionError(f"nothing read from {topic} over {connection.bootstrap_servers}")


def write_one(connection: KafkaConnection, topic: str, value: bytes) -> None:
    producer = Producer(kafka_client_config(connection) | {"message.timeout.ms": "15000"})
    delivered: list[object] = []
    producer.produce(topic, value, on_delivery=lambda error, _: delivered.append(error))
    producer.flush(20)
    assert delivered == [None], f"produce to {topic} over {connection.bootstrap_servers}"


@pytest.mark.parametrize(("listener", "protocol", "mechanism"), CASES)
def test_consumer_and_both_dead_letter_producers_connect(
    secure_kafka: SecureKafka,
    stack: StackConfig,
    unique_name: str,
    listener: str,
    protocol: str,
    mechanism: str | None,
):
    internal = secure_kafka.bootstrap("internal")
    create_topic(internal, unique_name, partitions=1)
    write_one(KafkaConnection(bootstrap_servers=internal), unique_name, b"source record")

    settings = import_connect(
        connect_config(secure_kafka, stack.kusto_url, listener, mechanism), "secure-sink"
    ).settings

    assert settings.kafka.security.protocol == protocol
    assert read_one(settings.kafka, unique_name) == b"source record"
    for dead_letter in (settings.dead_letter, settings.misc_dead_letter):
        assert dead_letter is not None and dead_letter.security.protocol == protocol
        write_one(dead_letter, unique_name, b"dead letter")


def validate(tmp_path: Path, props: dict[str, str]) -> subprocess.CompletedProcess:
    path = tmp_path / "sink.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def timed_preflight(props: dict[str, str]) -> tuple[str, float]:
    """The problems the start-up check finds, as one text, and how long it took."""
    with SinkRuntime(import_connect(props, "secure-sink").settings) as runtime:
        began = time.monotonic()
        problems = preflight(runtime)
        return "\n".join(map(str, problems)), time.monotonic() - began


def test_wrong_password_fails_validate_fast_and_clearly(
    secure_kafka: SecureKafka, stack: StackConfig, tmp_path: Path
):
    wrong = "not-the-password-3f9a"
    props = connect_config(
        secure_kafka, stack.kusto_url, "sasl_ssl", "SCRAM-SHA-512", password=wrong
    )
    problems, seconds = timed_preflight(props)
    assert seconds < 5, f"the start-up check took {seconds:.1f}s"
    result = validate(tmp_path, props)

    assert result.returncode != 0
    for text in (problems, result.stderr):
        assert "kafka.security" in text, "names the setting at fault"
        assert "refused the login" in text and "Authentication failed" in text
        assert "sasl.jaas.config" in text, "says which setting to check"
        assert wrong not in text
    assert wrong not in result.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("untrusted_ca", "certificate verify failed"),
        ("no_client_certificate", "client certificate"),
    ],
)
def test_untrusted_or_missing_certificate_fails_validate_fast(
    secure_kafka: SecureKafka, stack: StackConfig, change: str, expected: str
):
    props = connect_config(secure_kafka, stack.kusto_url, "ssl", None)
    for prefix in CONNECT_PREFIXES:
        if change == "untrusted_ca":
            props[f"{prefix}ssl.truststore.location"] = str(secure_kafka.foreign_ca_pem)
        else:
            for key in ("location", "type", "password"):
                del props[f"{prefix}ssl.keystore.{key}"]
    problems, seconds = timed_preflight(props)

    assert "refused the login" in problems and expected in problems
    assert secure_kafka.password not in problems
    assert seconds < 5, f"the start-up check took {seconds:.1f}s"
