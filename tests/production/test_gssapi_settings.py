"""GSSAPI (Kerberos): translated and documented, but not testable here.

The librdkafka inside the confluent-kafka wheel has no GSSAPI and there is no KDC on this
machine, so this test checks the settings the consumer and both dead-letter producers
would get, not a login (docs/production.md says so).
"""

from __future__ import annotations

from pipelines.config import import_connect
from pipelines.config.kafka_client import kafka_client_config

KERBEROS = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "GSSAPI",
    "sasl.kerberos.service.name": "kafka-svc",
    "sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
    'storeKey=true keyTab="/etc/security/keytabs/sink.keytab" principal="sink@EXAMPLE.COM";',
    "ssl.truststore.location": "/etc/kafka/ca.pem",
    "ssl.truststore.type": "PEM",
}


def test_kerberos_properties_become_librdkafka_gssapi_settings_for_every_client():
    props = {
        "name": "kerberos-sink",
        "topics": "orders",
        "kusto.ingestion.url": "http://127.0.0.1:8080",
        "kusto.tables.topics.mapping": '[{"topic":"orders","db":"db","table":"T","format":"json"}]',
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "behavior.on.error": "log",
        "errors.deadletterqueue.topic.name": "orders-dlq",
        "misc.deadletterqueue.topic.name": "orders-misc-dlq",
    }
    for prefix in ("consumer.override.", "errors.deadletterqueue.", "misc.deadletterqueue."):
        props[f"{prefix}bootstrap.servers"] = "broker.example.com:9093"
        props |= {f"{prefix}{key}": value for key, value in KERBEROS.items()}
    settings = import_connect(props, "kerberos-sink").settings

    for connection in (settings.kafka, settings.dead_letter, settings.misc_dead_letter):
        assert connection is not None
        config = kafka_client_config(connection)
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "GSSAPI"
        assert config["sasl.kerberos.service.name"] == "kafka-svc"
        assert config["sasl.kerberos.principal"] == "sink@EXAMPLE.COM"
        assert config["sasl.kerberos.keytab"] == "/etc/security/keytabs/sink.keytab"
        assert config["ssl.ca.location"] == "/etc/kafka/ca.pem"
        assert "sasl.username" not in config and "sasl.password" not in config
