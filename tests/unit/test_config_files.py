"""Settings files: YAML and Connect configs in, YAML out, secrets never written."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from pipelines.config import (
    CONFIG_ENV,
    ConfigError,
    Problem,
    config_path,
    import_config,
    load_settings,
    read_settings,
    to_yaml,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

YAML = """\
name: orders
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP}
  security:
    protocol: SASL_SSL
    sasl_mechanism: PLAIN
    sasl_username: alice
    sasl_password: ${env:KAFKA_PASSWORD}
kusto:
  ingestion_url: https://ingest-c.kusto.windows.net
  auth:
    strategy: application
    tenant: contoso
    client_id: app
    client_secret: ${env:KUSTO_APP_KEY}
topics: [orders]
mappings:
  - {topic: orders, db: Sales, table: Orders, format: json}
"""
ENV = {
    "KAFKA_BOOTSTRAP": "broker:9093",
    "KAFKA_PASSWORD": "kafka-password-value",
    "KUSTO_APP_KEY": "app-key-value",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return ENV


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_with_env_references(tmp_path: Path, env: dict[str, str]) -> None:
    settings = load_settings(write(tmp_path, "sink.yaml", YAML))
    assert settings.kafka.bootstrap_servers == "broker:9093"
    password = settings.kafka.security.sasl_password
    assert password is not None and password.get_secret_value() == "kafka-password-value"
    assert settings.group_id == "kusto-sink-orders"


def test_missing_variable_names_setting_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUSTO_APP_KEY", raising=False)
    monkeypatch.delenv("KAFKA_PASSWORD", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "broker:9093")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "sink.yml", YAML))
    assert caught.value.problems == [
        Problem("kafka.security.sasl_password", "environment variable KAFKA_PASSWORD is not set"),
        Problem("kusto.auth.client_secret", "environment variable KUSTO_APP_KEY is not set"),
    ]


def test_to_yaml_writes_references_not_secrets_and_round_trips(
    tmp_path: Path, env: dict[str, str]
) -> None:
    settings = load_settings(write(tmp_path, "sink.yaml", YAML))
    text = to_yaml(settings)
    for secret in ("kafka-password-value", "app-key-value"):
        assert secret not in text
    document = yaml.safe_load(text)
    assert document["kusto"]["auth"]["client_secret"] == "${env:KUSTO_APP_KEY}"
    assert document["kafka"]["security"]["sasl_password"] == "${env:KAFKA_PASSWORD}"
    assert load_settings(write(tmp_path, "again.yaml", text)) == settings


def test_literal_secrets_become_variables_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(
        tmp_path,
        "connect.properties",
        "name=orders\n"
        "connector.class=com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector\n"
        "topics=orders\n"
        "kusto.ingestion.url=https://ingest-c.kusto.windows.net\n"
        "aad.auth.appid=app\naad.auth.authority=contoso\naad.auth.appkey=written-in-file\n"
        "kusto.tables.topics.mapping=[{'topic':'orders','db':'Sales','table':'Orders'}]\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "consumer.override.bootstrap.servers=broker:9092\n",
    )
    settings = load_settings(source)
    text = to_yaml(settings)
    assert "written-in-file" not in text
    assert "#   KUSTO_SINK_KUSTO_AUTH_CLIENT_SECRET" in text
    monkeypatch.setenv("KUSTO_SINK_KUSTO_AUTH_CLIENT_SECRET", "written-in-file")
    assert load_settings(write(tmp_path, "sink.yaml", text)) == settings


def test_connect_json_in_rest_api_shape_and_bare(tmp_path: Path, env: dict[str, str]) -> None:
    config = {
        "connector.class": "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector",
        "topics": "orders",
        "tasks.max": 2,
        "kusto.ingestion.url": "http://127.0.0.1:8080",
        "kusto.tables.topics.mapping": "[{'topic': 'orders', 'db': 'Sales', 'table': 'O'}]",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "consumer.override.bootstrap.servers": "127.0.0.1:9092",
        "kusto.validation.table.enable": True,
    }
    wrapped = write(tmp_path, "c.json", json.dumps({"name": "legacy", "config": config}))
    settings = load_settings(wrapped)
    assert (settings.name, settings.group_id, settings.tasks_max) == ("legacy", "connect-legacy", 2)
    assert settings.kusto.validate_tables is True
    bare = write(tmp_path, "bare.json", json.dumps(config | {"name": "bare"}))
    assert load_settings(bare).group_id == "connect-bare"
    nameless = write(tmp_path, "nameless.json", json.dumps(config))
    with pytest.raises(ConfigError) as caught:
        load_settings(nameless)
    assert caught.value.problems[0].setting == "name"


def test_kind_is_told_by_content_without_a_known_suffix(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert load_settings(write(tmp_path, "sink.conf", YAML)).name == "orders"
    properties = (EXAMPLES / "connect-local.properties").read_text()
    assert load_settings(write(tmp_path, "sink.cfg", properties)).group_id == (
        "connect-local-orders"
    )
    connect_json = (EXAMPLES / "connect-local.json").read_text()
    assert load_settings(write(tmp_path, "sink", connect_json)).name == "local-payments"


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is not valid yaml"):
        load_settings(write(tmp_path, "bad.yaml", "name: [unclosed"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(write(tmp_path, "list.yaml", "- a\n- b\n"))


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".properties", ".json")),
)
def test_examples_load_and_round_trip(example: str, tmp_path: Path) -> None:
    settings = load_settings(EXAMPLES / example)
    assert settings.kusto.auth.strategy == "none"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    again = write(tmp_path, "again.yaml", to_yaml(settings))
    assert load_settings(again) == settings


def test_load_settings_warns_about_unused_properties(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING):
        load_settings(EXAMPLES / "connect-local.properties")
    warned = [record.getMessage() for record in caplog.records]
    assert any("errors.tolerance" in message for message in warned)


def test_import_config_command_prints_yaml_and_warnings() -> None:
    result = CliRunner().invoke(import_config, [str(EXAMPLES / "connect-local.properties")])
    assert result.exit_code == 0, result.output
    assert "warning: errors.tolerance is not used" in result.stderr
    assert yaml.safe_load(result.stdout)["group_id"] == "connect-local-orders"


def test_import_config_command_reports_problems(tmp_path: Path) -> None:
    source = write(tmp_path, "bad.properties", "name=x\nkusto.url=https://example.com\n")
    result = CliRunner().invoke(import_config, [str(source)])
    assert result.exit_code == 1
    assert "kusto.url: 'https://example.com': example.com is not a known Kusto host" in (
        result.stderr
    )


def test_config_path_from_option_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(ConfigError, match=CONFIG_ENV):
        config_path(None)
    monkeypatch.setenv(CONFIG_ENV, "/etc/sink.yaml")
    assert config_path(None) == Path("/etc/sink.yaml")
    assert config_path("local.yaml") == Path("local.yaml")


def test_read_settings_returns_unused_properties() -> None:
    loaded = read_settings(EXAMPLES / "connect-local.json")
    assert "connector.class" in loaded.unused
    assert read_settings(EXAMPLES / "local.yaml").unused == {}


def test_public_names_are_exactly_all() -> None:
    import pipelines.config as config

    public = {name for name in vars(config) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(config, name)).__name__ == "module"}
    assert public - modules == set(config.__all__)


def test_malformed_properties_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="malformed"):
        load_settings(write(tmp_path, "bad.properties", "name=a\\u12\n"))


def test_settings_survive_pickling_with_their_references(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import pickle

    settings = load_settings(write(tmp_path, "sink.yaml", YAML))
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert to_yaml(copy) == to_yaml(settings)
