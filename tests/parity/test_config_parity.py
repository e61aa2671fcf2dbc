"""The reference's newer properties, read from Kafka Connect .properties files (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from parity_helpers import QUICKSTART_ENV, REFERENCE

from pipelines.config import ConfigError, SinkSettings, read_settings

ENGINE = "https://mycluster.westeurope.kusto.windows.net"
INGEST = "https://ingest-mycluster.westeurope.kusto.windows.net"
BASE = {
    "name": "parity",
    "connector.class": "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector",
    "topics": "orders",
    "consumer.override.bootstrap.servers": "127.0.0.1:9092",
    "value.converter": "org.apache.kafka.connect.storage.StringConverter",
    "kusto.tables.topics.mapping": "[{'topic': 'orders','db': 'db', 'table': 'Orders',"
    "'format': 'json', 'mapping': 'orders_json'}]",
    "kusto.ingestion.url": INGEST,
    "aad.auth.strategy": "managed_identity",
}


def load(tmp_path: Path, **props: str | None) -> SinkSettings:
    merged = {**BASE, **props}
    lines = [f"{key}={value}" for key, value in merged.items() if value is not None]
    path = tmp_path / "sink.properties"
    path.write_text("\n".join(lines) + "\n")
    return read_settings(path, environ={"APP_KEY": "secret"}).settings


def problems(tmp_path: Path, **props: str | None) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, **props)
    return str(raised.value)


def test_the_reference_properties_example_is_our_config(tmp_path: Path) -> None:
    environ = {
        "PARITY_TOPICS": "testing1,testing2",
        "PARITY_TOPIC_1": "testing1",
        "PARITY_TOPIC_2": "testing2",
        "PARITY_DB": "test_db",
        "PARITY_TEMPDIR": str(tmp_path),
        "KUSTO_URL": "http://127.0.0.1:8080",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    }
    loaded = read_settings(REFERENCE / "connect-kusto-sink.properties", environ=environ)
    settings = loaded.settings
    assert settings.group_id == "connect-KustoSinkConnector"
    assert settings.topics == ["testing1", "testing2"]
    assert [(m.topic, m.table, m.format, m.mapping) for m in settings.mappings] == [
        ("testing1", "test_table_1", "json", "JsonMapping"),
        ("testing2", "test_table_2", "csv", "CsvMapping"),
    ]
    assert (settings.flush_size_bytes, settings.flush_interval_ms) == (1000, 60_000)
    assert settings.behavior_on_error == "fail" and settings.tempdir == tmp_path
    assert (settings.retry.max_time_ms, settings.retry.backoff_ms) == (60_000, 5000)
    assert settings.misc_dead_letter is not None
    assert settings.misc_dead_letter.topic == "test-topic-error"
    assert settings.dead_letter is not None and settings.dead_letter.topic == "connect-dlq-topic"
    assert "errors.deadletterqueue.topic.replication.factor" in loaded.unused


def test_the_reference_quickstart_json_is_our_config_unchanged() -> None:
    read_settings(REFERENCE / "kusto-sink-connector.json", environ=QUICKSTART_ENV)


def test_ingestion_and_query_urls_and_the_older_kusto_url(tmp_path: Path) -> None:
    settings = load(tmp_path, **{"kusto.query.url": ENGINE})
    assert (settings.kusto.ingestion_url, settings.kusto.query_url) == (INGEST, ENGINE)
    older = load(tmp_path, **{"kusto.ingestion.url": None, "kusto.url": INGEST})
    assert older.kusto.ingestion_url == INGEST and older.kusto.query_url == ENGINE


@pytest.mark.parametrize(
    ("props", "strategy"),
    [
        (
            {
                "aad.auth.strategy": "application",
                "aad.auth.appid": "app",
                "aad.auth.appkey": "${env:APP_KEY}",
                "aad.auth.authority": "tenant",
            },
            "application",
        ),
        ({"aad.auth.strategy": "MANAGED_IDENTITY"}, "managed_identity"),
        ({"aad.auth.strategy": "workload_identity"}, "workload_identity"),
        (
            {"aad.auth.strategy": "az_dev_token", "aad.auth.accesstoken": "${env:APP_KEY}"},
            "az_dev_token",
        ),
    ],
)
def test_auth_strategies(tmp_path: Path, props: dict[str, str], strategy: str) -> None:
    assert load(tmp_path, **props).kusto.auth.strategy == strategy


def test_az_dev_token_needs_the_access_token(tmp_path: Path) -> None:
    assert "required with strategy az_dev_token" in problems(
        tmp_path, **{"aad.auth.strategy": "az_dev_token"}
    )


def test_table_validation_and_proxy(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        **{
            "kusto.validation.table.enable": "true",
            "proxy.host": "proxy.corp",
            "proxy.port": "3128",
        },
    )
    assert settings.kusto.validate_tables
    assert settings.kusto.proxy is not None
    assert (settings.kusto.proxy.host, settings.kusto.proxy.port) == ("proxy.corp", 3128)


def test_topics_regex_and_a_star_mapping(tmp_path: Path) -> None:
    mapping = (
        "[{'topic': 'orders','db': 'db', 'table': 'Orders','format': 'json'},"
        "{'topic': '*','db': 'db', 'table': 'Everything','format': 'json'}]"
    )
    settings = load(
        tmp_path,
        topics=None,
        **{"topics.regex": "orders|events-.*", "kusto.tables.topics.mapping": mapping},
    )
    assert settings.topics is None and settings.reads_topic("events-eu")
    assert [m.table for m in settings.mapping_for("orders")] == ["Orders"]
    assert [m.table for m in settings.mapping_for("events-eu")] == ["Everything"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mycluster.kusto.windows.net", "must be https://"),
        ("https://kusto.attacker.example", "not a known Kusto host"),
        ("ftp://127.0.0.1:8080", "scheme must be http or https"),
    ],
)
def test_kusto_urls_other_than_https_known_hosts_or_loopback_are_refused(
    tmp_path: Path, url: str, reason: str
) -> None:
    message = problems(tmp_path, **{"kusto.ingestion.url": url})
    assert "kusto.ingestion.url" in message and reason in message


def test_a_loopback_emulator_url_is_accepted(tmp_path: Path) -> None:
    settings = load(
        tmp_path, **{"kusto.ingestion.url": "http://127.0.0.1:8080", "aad.auth.strategy": None}
    )
    assert settings.kusto.query_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("{'topic': 'orders', 'table': 'Orders'}", "db"),
        ("{'topic': 'orders', 'db': 'db'}", "table"),
        ("{'db': 'db', 'table': 'Orders'}", "topic"),
        ("{'topic': 'orders', 'db': 'db', 'table': 'Or$ders'}", "not a valid Kusto name"),
        ("{'topic': 'orders', 'db': 'db', 'table': 'Orders', 'format': 'xml'}", "format"),
    ],
)
def test_mapping_entries_are_validated(tmp_path: Path, entry: str, reason: str) -> None:
    message = problems(tmp_path, **{"kusto.tables.topics.mapping": f"[{entry}]"})
    assert "kusto.tables.topics.mapping" in message and reason in message


def test_metadata_columns_per_mapping_from_connect_json(tmp_path: Path) -> None:
    mapping = (
        "[{'topic': 'orders','db': 'db', 'table': 'Orders','format': 'json',"
        "'metadata_columns': {'key': 'kafka_key', 'offset': 'kafka_offset'}}]"
    )
    settings = load(tmp_path, **{"kusto.tables.topics.mapping": mapping})
    columns = settings.mappings[0].metadata_columns
    assert columns is not None
    assert columns.columns() == {"key": "kafka_key", "offset": "kafka_offset"}


def test_metadata_columns_on_whole_files_are_refused_at_start_up(tmp_path: Path) -> None:
    mapping = (
        "[{'topic': 'orders','db': 'db', 'table': 'Orders','format': 'parquet',"
        "'metadata_columns': {'offset': 'kafka_offset'}}]"
    )
    message = problems(
        tmp_path,
        **{
            "kusto.tables.topics.mapping": mapping,
            "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        },
    )
    assert "metadata_columns" in message and "parquet rows carried whole" in message
