"""Our Kafka settings as librdkafka configuration, accepted by confluent-kafka as is."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from pipelines.config import (
    DeadLetterSettings,
    KafkaConnection,
    KafkaSettings,
    kafka_client_config,
)


def connection(**security: Any) -> KafkaConnection:
    return KafkaConnection.model_validate(
        {"bootstrap_servers": "127.0.0.1:1", "security": security}
    )


def test_plaintext_is_just_the_servers() -> None:
    assert kafka_client_config(connection()) == {
        "bootstrap.servers": "127.0.0.1:1",
        "security.protocol": "PLAINTEXT",
    }


def test_sasl_ssl_with_scram_and_pem_files() -> None:
    config = kafka_client_config(
        connection(
            protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="alice",
            sasl_password="pw",
            ssl_ca_location="/etc/kafka/ca.pem",
            ssl_certificate_location="/etc/kafka/client.pem",
            ssl_key_location="/etc/kafka/client.key",
            ssl_key_password="kp",
            ssl_verify_hostname=False,
        )
    )
    assert config == {
        "bootstrap.servers": "127.0.0.1:1",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "pw",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.certificate.location": "/etc/kafka/client.pem",
        "ssl.key.location": "/etc/kafka/client.key",
        "ssl.key.password": "kp",
    }


def test_pkcs12_keystore_and_pem_text() -> None:
    config = kafka_client_config(
        connection(
            protocol="SSL",
            ssl_keystore_location="/k.p12",
            ssl_keystore_password="sp",
            ssl_ca_pem="-----BEGIN CERTIFICATE-----",
        )
    )
    assert config["ssl.keystore.location"] == "/k.p12"
    assert config["ssl.keystore.password"] == "sp"
    assert config["ssl.ca.pem"] == "-----BEGIN CERTIFICATE-----"
    assert config["ssl.endpoint.identification.algorithm"] == "https"


def test_kerberos() -> None:
    config = kafka_client_config(
        connection(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism="GSSAPI",
            kerberos_principal="sink@EXAMPLE.COM",
            kerberos_keytab="/etc/sink.keytab",
        )
    )
    assert config["sasl.kerberos.service.name"] == "kafka"
    assert config["sasl.kerberos.principal"] == "sink@EXAMPLE.COM"
    assert config["sasl.kerberos.keytab"] == "/etc/sink.keytab"


def test_oauthbearer_oidc_and_unsecured() -> None:
    oidc = kafka_client_config(
        connection(
            protocol="SASL_SSL",
            sasl_mechanism="OAUTHBEARER",
            oauthbearer={
                "token_endpoint_url": "https://login/token",
                "client_id": "sink",
                "client_secret": "cs",
                "scope": "kafka",
                "extensions": {"logicalCluster": "lkc-1"},
            },
        )
    )
    assert {key: value for key, value in oidc.items() if "oauthbearer" in key} == {
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://login/token",
        "sasl.oauthbearer.client.id": "sink",
        "sasl.oauthbearer.client.secret": "cs",
        "sasl.oauthbearer.scope": "kafka",
        "sasl.oauthbearer.extensions": "logicalCluster=lkc-1",
    }
    unsecured = kafka_client_config(
        connection(
            protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER", oauthbearer={"principal": "a"}
        )
    )
    assert unsecured["enable.sasl.oauthbearer.unsecure.jwt"] == "true"
    assert unsecured["sasl.oauthbearer.config"] == "principal=a"


def test_consumer_keys_only_for_the_source_consumer() -> None:
    kafka = KafkaSettings.model_validate(
        {
            "bootstrap_servers": "127.0.0.1:1",
            "auto_offset_reset": "latest",
            "librdkafka": {"fetch.wait.max.ms": 50},
        }
    )
    consumer = kafka_client_config(kafka, consumer=True)
    assert consumer["auto.offset.reset"] == "latest"
    assert consumer["enable.auto.commit"] == "false"
    assert consumer["fetch.wait.max.ms"] == "50"
    assert "auto.offset.reset" not in kafka_client_config(kafka)


def test_max_poll_interval_is_forwarded() -> None:
    kafka = KafkaSettings.model_validate(
        {"bootstrap_servers": "127.0.0.1:1", "max_poll_interval_ms": 600_000}
    )
    assert kafka_client_config(kafka, consumer=True)["max.poll.interval.ms"] == "600000"


@pytest.mark.parametrize(
    "security",
    [
        {},
        {
            "protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": "u",
            "sasl_password": "p",
        },
        {
            "protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": "u",
            "sasl_password": "p",
            "ssl_verify_hostname": False,
        },
        {
            "protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "OAUTHBEARER",
            "oauthbearer": {"principal": "alice", "extensions": {"a": "b"}},
        },
    ],
)
def test_librdkafka_accepts_the_configuration(security: dict[str, Any]) -> None:
    kafka = KafkaSettings.model_validate({"bootstrap_servers": "127.0.0.1:1", "security": security})
    consumer = Consumer(kafka_client_config(kafka, consumer=True) | {"group.id": "g"})
    consumer.close()
    dead_letter = DeadLetterSettings.model_validate(
        {"topic": "dlq", "bootstrap_servers": "127.0.0.1:1", "security": security}
    )
    Producer(kafka_client_config(dead_letter)).flush(0)


def test_poll_interval_below_session_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="must be at least session.timeout.ms"):
        KafkaSettings.model_validate({"bootstrap_servers": "b:9092", "max_poll_interval_ms": 1000})
    KafkaSettings.model_validate(
        {
            "bootstrap_servers": "b:9092",
            "max_poll_interval_ms": 1000,
            "librdkafka": {"session.timeout.ms": 1000},
        }
    )
