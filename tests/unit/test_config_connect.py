"""Importing the reference connector's Kafka Connect configuration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import (
    CONVERTER_CLASSES,
    ConfigError,
    Problem,
    Secret,
    SinkSettings,
    import_connect,
    parse_properties,
    settings_from_connect,
)
from pipelines.config.connect import parse_lenient_json
from pipelines.config.kafka_java import parse_jaas

INGEST = "https://ingest-mycluster.westeurope.kusto.windows.net"
JAAS_PLAIN = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="alice" password="${env:KAFKA_PASSWORD}";'
)


def connect(**changes: str) -> dict[str, str]:
    """A valid Connect config of the Kusto sink, with ``changes`` (dots as ``__``)."""
    props = {
        "connector.class": "com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector",
        "tasks.max": "3",
        "topics": "orders, refunds",
        "kusto.ingestion.url": INGEST,
        "aad.auth.appid": "app-id",
        "aad.auth.appkey": "${env:KUSTO_APP_KEY}",
        "aad.auth.authority": "tenant-id",
        "kusto.tables.topics.mapping": (
            "[{'topic': 'orders','db': 'Sales', 'table': 'Orders','format': 'json', "
            "'mapping':'OrdersMapping'},{'topic': 'refunds','db': 'Sales', "
            "'table': 'Refunds','format': 'csv', 'streaming': 'true'}]"
        ),
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "consumer.override.bootstrap.servers": "broker:9092",
    }
    props.update({key.replace("__", "."): value for key, value in changes.items()})
    return props


ENV = {"KUSTO_APP_KEY": "app-key-value", "KAFKA_PASSWORD": "kafka-password-value"}


def imported(props: dict[str, Any], environ: dict[str, str] = ENV) -> SinkSettings:
    return import_connect(props, "orders-sink", environ=environ).settings


def problems(props: dict[str, Any], environ: dict[str, str] = ENV) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        import_connect(props, "orders-sink", environ=environ)
    return caught.value.problems


def test_reference_config_becomes_settings() -> None:
    settings = imported(connect())
    assert settings.name == "orders-sink"
    assert settings.group_id == "connect-orders-sink"
    assert settings.topics == ["orders", "refunds"]
    assert settings.kafka.bootstrap_servers == "broker:9092"
    assert settings.kusto.ingestion_url == INGEST
    assert settings.kusto.query_url == "https://mycluster.westeurope.kusto.windows.net"
    auth = settings.kusto.auth
    assert (auth.strategy, auth.client_id, auth.tenant) == ("application", "app-id", "tenant-id")
    assert auth.client_secret is not None
    assert auth.client_secret.get_secret_value() == "app-key-value"
    orders, refunds = settings.mappings
    assert (orders.topic, orders.db, orders.table, orders.format, orders.mapping) == (
        "orders",
        "Sales",
        "Orders",
        "json",
        "OrdersMapping",
    )
    assert (refunds.format, refunds.streaming, refunds.mapping) == ("csv", True, None)
    assert settings.tasks_max == 3
    assert settings.value_converter.kind == "string"


def test_every_listed_property_is_understood() -> None:
    props = connect(
        kusto__query__url="https://mycluster.westeurope.kusto.windows.net",
        aad__auth__strategy="APPLICATION",
        kusto__validation__table__enable="true",
        proxy__host="proxy.corp",
        proxy__port="3128",
        flush__size__bytes="4096",
        flush__interval__ms="1000",
        tempdir__path="/var/tmp/kusto",
        behavior__on__error="LOG",
        errors__retry__max__time__ms="60000",
        errors__retry__backoff__time__ms="5000",
        errors__deadletterqueue__bootstrap__servers="dlq:9092",
        errors__deadletterqueue__topic__name="orders-dlq",
        errors__deadletterqueue__security__protocol="SASL_SSL",
        errors__deadletterqueue__sasl__mechanism="PLAIN",
        errors__deadletterqueue__sasl__jaas__config=JAAS_PLAIN,
        misc__deadletterqueue__bootstrap__servers="misc:9092",
        misc__deadletterqueue__topic__name="orders-misc",
        misc__deadletterqueue__security__protocol="SASL_PLAINTEXT",
        misc__deadletterqueue__sasl__mechanism="SCRAM-SHA-256",
        misc__deadletterqueue__sasl__jaas__config=JAAS_PLAIN.replace(
            "plain.PlainLoginModule", "scram.ScramLoginModule"
        ),
        consumer__override__security__protocol="SASL_PLAINTEXT",
        consumer__override__sasl__mechanism="GSSAPI",
        consumer__override__sasl__kerberos__service__name="kafka-svc",
        consumer__override__sasl__jaas__config=(
            "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
            'storeKey=true keyTab="/etc/security/keytabs/sink.keytab" '
            'principal="sink@EXAMPLE.COM";'
        ),
        consumer__override__auto__offset__reset="latest",
        consumer__override__max__poll__interval__ms="600000",
        value__converter="io.confluent.connect.avro.AvroConverter",
        value__converter__schema__registry__url="http://registry:8081",
    )
    settings = imported(props)
    kusto = settings.kusto
    assert kusto.validate_tables is True
    assert kusto.proxy is not None and (kusto.proxy.host, kusto.proxy.port) == ("proxy.corp", 3128)
    assert (settings.flush_size_bytes, settings.flush_interval_ms) == (4096, 1000)
    assert str(settings.tempdir) == "/var/tmp/kusto"
    assert settings.behavior_on_error == "log"
    assert (settings.retry.max_time_ms, settings.retry.backoff_ms) == (60_000, 5_000)
    dlq = settings.dead_letter
    assert dlq is not None
    assert (dlq.topic, dlq.bootstrap_servers) == ("orders-dlq", "dlq:9092")
    assert (dlq.security.protocol, dlq.security.sasl_mechanism) == ("SASL_SSL", "PLAIN")
    assert dlq.security.sasl_username == "alice"
    assert dlq.security.sasl_password is not None
    assert dlq.security.sasl_password.get_secret_value() == "kafka-password-value"
    misc = settings.misc_dead_letter
    assert misc is not None and misc.security.sasl_mechanism == "SCRAM-SHA-256"
    security = settings.kafka.security
    assert (security.protocol, security.sasl_mechanism) == ("SASL_PLAINTEXT", "GSSAPI")
    assert security.kerberos_service_name == "kafka-svc"
    assert str(security.kerberos_keytab) == "/etc/security/keytabs/sink.keytab"
    assert security.kerberos_principal == "sink@EXAMPLE.COM"
    assert settings.kafka.auto_offset_reset == "latest"
    assert settings.kafka.max_poll_interval_ms == 600_000
    assert settings.value_converter.kind == "avro"
    assert settings.value_converter.schema_registry_url == "http://registry:8081"


@pytest.mark.parametrize(("class_name", "kind"), sorted(CONVERTER_CLASSES.items()))
def test_converter_classes_map_to_kinds(class_name: str, kind: str) -> None:
    props = connect(value__converter=class_name, key__converter=class_name)
    registry = {"avro", "json_schema", "protobuf"}
    if kind in registry:
        props["value.converter.schema.registry.url"] = "http://registry:8081"
        props["key.converter.schema.registry.url"] = "http://registry:8081"
    settings = imported(props)
    assert settings.value_converter.kind == kind
    assert settings.key_converter.kind == kind


def test_json_converter_expects_schemas_like_kafka_connect_unless_told() -> None:
    props = connect(value__converter="org.apache.kafka.connect.json.JsonConverter")
    assert imported(props).value_converter.schemas_enable is True
    props["value.converter.schemas.enable"] = "false"
    assert imported(props).value_converter.schemas_enable is False


def test_registry_converter_without_url_names_the_property() -> None:
    props = connect(value__converter="io.confluent.connect.json.JsonSchemaConverter")
    assert problems(props) == [
        Problem(
            "value.converter.schema.registry.url",
            "required with kind json_schema",
        )
    ]


def test_registry_basic_auth_from_user_info() -> None:
    props = connect(
        value__converter="io.confluent.connect.protobuf.ProtobufConverter",
        value__converter__schema__registry__url="https://registry:8081",
        value__converter__basic__auth__credentials__source="USER_INFO",
        value__converter__basic__auth__user__info="reader:${env:KAFKA_PASSWORD}",
    )
    converter = imported(props).value_converter
    assert converter.registry_username == "reader"
    assert converter.registry_password is not None
    assert converter.registry_password.get_secret_value() == "kafka-password-value"


def test_unknown_converter_and_missing_value_converter() -> None:
    props = connect(value__converter="com.example.XmlConverter")
    (problem,) = problems(props)
    assert problem.setting == "value.converter"
    assert problem.message.startswith("unknown converter com.example.XmlConverter (supported: ")
    del props["value.converter"]
    (problem,) = problems(props)
    assert problem.setting == "value.converter"
    assert problem.message.startswith("required: one of ")


def test_older_property_names_are_accepted() -> None:
    props = connect()
    props.pop("kusto.ingestion.url")
    props.pop("kusto.tables.topics.mapping")
    props |= {
        "kusto.url": INGEST,
        "kusto.auth.appid": "app-id",
        "kusto.tables.topics_mapping": "[{'topic': '*', 'db': 'Sales', 'table': 'All'}]",
        "kusto.sink.flush_size": "2048",
        "kusto.sink.flush_interval_ms": "500",
        "kusto.sink.tempdir": "/tmp/old",
        "dlq.bootstrap.servers": "misc:9092",
        "dlq.topic.name": "misc-dlq",
    }
    settings = imported(props)
    assert settings.kusto.ingestion_url == INGEST
    assert [m.table for m in settings.mapping_for("refunds")] == ["All"]
    assert (settings.flush_size_bytes, settings.flush_interval_ms) == (2048, 500)
    assert settings.misc_dead_letter is not None
    assert settings.misc_dead_letter.topic == "misc-dlq"


def test_two_names_of_one_setting_must_agree() -> None:
    props = connect(kusto__url="https://ingest-other.kusto.windows.net")
    (problem,) = problems(props)
    assert problem.setting in ("kusto.url", "kusto.ingestion.url")
    assert "conflicts with" in problem.message


def test_parity_strategies_and_access_token() -> None:
    props = connect(aad__auth__strategy="az_dev_token", aad__auth__accesstoken="${env:TOKEN}")
    for key in ("aad.auth.appid", "aad.auth.appkey", "aad.auth.authority"):
        props.pop(key)
    auth = imported(props, {"TOKEN": "eyJ"}).kusto.auth
    assert auth.strategy == "az_dev_token"
    assert auth.token is not None and auth.token.get_secret_value() == "eyJ"
    props = connect(aad__auth__strategy="workload_identity")
    props.pop("aad.auth.appkey")
    assert imported(props).kusto.auth.strategy == "workload_identity"
    props = connect(aad__auth__strategy="MANAGED_IDENTITY")
    props.pop("aad.auth.appkey")
    props.pop("aad.auth.authority")
    auth = imported(props).kusto.auth
    assert (auth.strategy, auth.client_id) == ("managed_identity", "app-id")


def test_problems_name_the_connect_property() -> None:
    props = connect(flush__size__bytes="10", aad__auth__strategy="kerberos")
    props.pop("aad.auth.appkey")
    settings_problems = {p.setting: p.message for p in problems(props)}
    assert settings_problems["flush.size.bytes"] == "Input should be greater than or equal to 100"
    assert "Input should be 'none'" in settings_problems["aad.auth.strategy"]


def test_mapping_problems_point_into_the_mapping_property() -> None:
    props = connect(
        kusto__tables__topics__mapping="[{'topic': 'orders', 'db': 'Sales', 'format': 'xml'}]"
    )
    found = {p.setting for p in problems(props)}
    assert "kusto.tables.topics.mapping (mappings[0].table)" in found
    assert "kusto.tables.topics.mapping (mappings[0].format)" in found
    props["kusto.tables.topics.mapping"] = "[{'topic': 'orders'"
    (problem,) = problems(props)
    assert problem.setting == "kusto.tables.topics.mapping"
    assert problem.message.startswith("not a JSON list of mappings")


def test_topics_regex_and_wildcard_mapping() -> None:
    props = connect(
        topics__regex="orders-.*",
        kusto__tables__topics__mapping="[{'topic': '*', 'db': 'Sales', 'table': 'All', "
        "'format': 'json'}]",
    )
    props.pop("topics")
    settings = imported(props)
    assert (settings.topics, settings.topics_regex) == (None, "orders-.*")
    assert settings.mapping_for("orders-eu")[0].table == "All"


def test_connect_only_properties_are_accepted_and_reported(caplog: Any) -> None:
    props = connect(
        name="orders-sink",
        errors__tolerance="all",
        errors__log__enable="true",
        transforms="unwrap",
        transforms__unwrap__type="io.debezium.transforms.ExtractNewRecordState",
        errors__deadletterqueue__topic__name="orders-dlq",
        errors__deadletterqueue__context__headers__enable="true",
        errors__deadletterqueue__topic__replication__factor="3",
        value__converter__schemas__enable="false",
        consumer__override__max__poll__records="500",
        consumer__override__fetch__max__wait__ms="200",
    )
    result = import_connect(props, "orders-sink", environ=ENV)
    assert set(result.unused) == {
        "connector.class",
        "errors.tolerance",
        "errors.log.enable",
        "transforms",
        "transforms.unwrap.type",
        "errors.deadletterqueue.context.headers.enable",
        "errors.deadletterqueue.topic.replication.factor",
        "value.converter.schemas.enable",
        "consumer.override.max.poll.records",
    }
    assert "not applied" in result.unused["transforms"]
    assert result.settings.kafka.librdkafka == {"fetch.wait.max.ms": "200"}
    with caplog.at_level(logging.WARNING, logger="pipelines.config.connect"):
        settings_from_connect(props | {"aad.auth.appkey": "literal"}, "orders-sink")
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "transforms.unwrap.type" in warned and "errors.tolerance" in warned


def test_connect_dead_letter_queue_defaults_to_the_source_cluster() -> None:
    props = connect(
        errors__deadletterqueue__topic__name="orders-dlq",
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
        consumer__override__sasl__jaas__config=JAAS_PLAIN,
    )
    dlq = imported(props).dead_letter
    assert dlq is not None
    assert dlq.bootstrap_servers == "broker:9092"
    assert dlq.security.sasl_username == "alice"


def test_misc_dead_letter_queue_needs_its_servers() -> None:
    props = connect(misc__deadletterqueue__topic__name="orders-misc")
    assert problems(props) == [Problem("misc.deadletterqueue.bootstrap.servers", "required")]


def test_log_without_a_dead_letter_queue_loads_as_the_reference_quickstart_writes_it() -> None:
    settings = import_connect(connect(behavior__on__error="log"), "sink", environ=ENV).settings
    assert settings.behavior_on_error == "log" and settings.dead_letter is None


def test_unknown_and_removed_properties_are_errors() -> None:
    props = connect(kusto__ingestion__urll=INGEST, kusto__auth__username="u")
    props["errors.deadletterqueue.topic.name"] = "dlq"
    props["errors.deadletterqueue.linger.ms"] = "5"
    found = {p.setting: p.message for p in problems(props)}
    assert found["kusto.ingestion.urll"] == "unknown property"
    assert found["errors.deadletterqueue.linger.ms"] == "unknown property"
    assert "user/password" in found["kusto.auth.username"]


def test_another_connectors_config_is_refused() -> None:
    props = connect(connector__class="io.confluent.connect.s3.S3SinkConnector")
    (problem,) = problems(props)
    assert problem.setting == "connector.class"


def test_bootstrap_servers_are_required_with_a_reason() -> None:
    props = connect()
    props.pop("consumer.override.bootstrap.servers")
    (problem,) = problems(props)
    assert problem.setting == "consumer.override.bootstrap.servers"
    assert "worker's bootstrap.servers" in problem.message


def test_consumer_group_override_is_kept() -> None:
    props = connect(consumer__override__group__id="legacy-group")
    assert imported(props).group_id == "legacy-group"


def test_missing_environment_variable_names_property_and_variable() -> None:
    (problem,) = problems(connect(), environ={})
    assert problem == Problem("aad.auth.appkey", "environment variable KUSTO_APP_KEY is not set")


def test_file_and_directory_providers_read_secrets(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.properties"
    secrets.write_text("appkey=from-file\n")
    (tmp_path / "kafka-password").write_text("from-directory")
    props = connect(
        aad__auth__appkey=f"${{file:{secrets}:appkey}}",
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
        consumer__override__sasl__jaas__config=JAAS_PLAIN.replace(
            "${env:KAFKA_PASSWORD}", f"${{directory:{tmp_path}:kafka-password}}"
        ),
    )
    settings = imported(props, environ={})
    secret = settings.kusto.auth.client_secret
    assert secret is not None and secret.get_secret_value() == "from-file"
    assert isinstance(secret, Secret) and secret.reference == f"${{file:{secrets}:appkey}}"
    password = settings.kafka.security.sasl_password
    assert password is not None and password.get_secret_value() == "from-directory"


def test_provider_problems_name_property_and_cause(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.properties"
    secrets.write_text("other=x\n")
    cases = {
        f"${{file:{secrets}:appkey}}": f"{secrets} has no key appkey",
        f"${{file:{tmp_path}/absent:appkey}}": "No such file or directory",
        "${file:nokey}": "expected ${file:PATH:KEY}",
        "${vault:secret/kusto:appkey}": "config provider 'vault'",
        "${env:1BAD}": "is not a valid variable name",
    }
    for reference, reason in cases.items():
        (problem,) = problems(connect(aad__auth__appkey=reference))
        assert problem.setting == "aad.auth.appkey"
        assert reason in problem.message, problem


def test_java_keystores_are_translated_or_refused_with_a_fix() -> None:
    props = connect(
        consumer__override__security__protocol="SSL",
        consumer__override__ssl__truststore__location="/etc/kafka/ca.pem",
        consumer__override__ssl__truststore__type="PEM",
        consumer__override__ssl__keystore__location="/etc/kafka/client.p12",
        consumer__override__ssl__keystore__password="${env:KAFKA_PASSWORD}",
        consumer__override__ssl__key__password="${env:KAFKA_PASSWORD}",
        consumer__override__ssl__endpoint__identification__algorithm="",
        consumer__override__ssl__enabled__protocols="TLSv1.2",
    )
    security = imported(props).kafka.security
    assert str(security.ssl_ca_location) == "/etc/kafka/ca.pem"
    assert str(security.ssl_keystore_location) == "/etc/kafka/client.p12"
    assert security.ssl_verify_hostname is False
    assert security.ssl_keystore_password is not None
    props["consumer.override.ssl.truststore.location"] = "/etc/kafka/truststore.jks"
    props.pop("consumer.override.ssl.truststore.type")
    (problem,) = problems(props)
    assert problem.setting == "consumer.override.ssl.truststore.location"
    assert "export its CA certificates as PEM" in problem.message


def test_oauthbearer_jaas_becomes_oidc_settings() -> None:
    props = connect(
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="OAUTHBEARER",
        consumer__override__sasl__oauthbearer__token__endpoint__url="https://login/token",
        consumer__override__sasl__login__callback__handler__class="org.x.Handler",
        consumer__override__sasl__jaas__config=(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'clientId="sink" clientSecret="${env:KAFKA_PASSWORD}" scope="kafka" '
            'extension_logicalCluster="lkc-1";'
        ),
    )
    oauth = imported(props).kafka.security.oauthbearer
    assert oauth is not None
    assert (oauth.token_endpoint_url, oauth.client_id, oauth.scope) == (
        "https://login/token",
        "sink",
        "kafka",
    )
    assert oauth.extensions == {"logicalCluster": "lkc-1"}
    assert oauth.client_secret is not None


def test_unsupported_login_module_is_named() -> None:
    props = connect(
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
        consumer__override__sasl__jaas__config="com.example.CustomLoginModule required a=b;",
    )
    found = {p.setting: p.message for p in problems(props)}
    assert (
        "login module CustomLoginModule is not supported"
        in found["consumer.override.sasl.jaas.config"]
    )


def test_parse_jaas_reads_quoted_and_bare_options() -> None:
    module, options = parse_jaas(
        "org.apache.kafka.common.security.plain.PlainLoginModule required\n"
        '  username="$ConnectionString" password="Endpoint=sb://x/;Key=a\\"b" debug=true;'
    )
    assert module == "PlainLoginModule"
    assert options == {
        "username": "$ConnectionString",
        "password": 'Endpoint=sb://x/;Key=a"b',
        "debug": "true",
    }
    with pytest.raises(ValueError):
        parse_jaas("username=alice")


def test_properties_files_follow_java_rules() -> None:
    text = (
        "# comment\n"
        "! also a comment\n"
        "name = my-sink\n"
        "topics:orders\n"
        "tasks.max 2\n"
        "kusto.tables.topics.mapping=[{'topic': 'a', \\\n"
        "    'db': 'b'}]\n"
        "path=C:\\\\tmp\\u0041\n"
        "key\\=with\\:colon=v=w\n"
        "empty=\n"
    )
    assert parse_properties(text) == {
        "name": "my-sink",
        "topics": "orders",
        "tasks.max": "2",
        "kusto.tables.topics.mapping": "[{'topic': 'a', 'db': 'b'}]",
        "path": "C:\\tmpA",
        "key=with:colon": "v=w",
        "empty": "",
    }


def test_lenient_json_reads_single_quotes() -> None:
    assert parse_lenient_json("[{'a': 'it\\'s', \"b\": \"say \\\"hi\\\"\", 'c': true}]") == [
        {"a": "it's", "b": 'say "hi"', "c": True}
    ]
    assert parse_lenient_json("""[{'q': 'a "quoted" word'}]""") == [{"q": 'a "quoted" word'}]


def test_malformed_jaas_never_echoes_the_password() -> None:
    props = connect(
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
        consumer__override__sasl__jaas__config=(
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="alice" password="hunter2;'
        ),
    )
    found = problems(props)
    assert "hunter2" not in str(found)
    assert any(p.setting == "consumer.override.sasl.jaas.config" for p in found)


def test_json_values_need_not_be_strings() -> None:
    props: dict[str, Any] = connect()
    props["kusto.tables.topics.mapping"] = [
        {"topic": "orders", "db": "Sales", "table": "Orders", "streaming": True},
        {"topic": "refunds", "db": "Sales", "table": "Refunds"},
    ]
    props["tasks.max"] = 4
    settings = imported(props)
    assert settings.mappings[0].streaming is True
    assert settings.tasks_max == 4


def test_malformed_unicode_escape_is_an_error() -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_properties("a=\\u00zz\n")


def test_misc_dead_letter_producer_properties_are_accepted_as_unused() -> None:
    props = connect(
        misc__deadletterqueue__bootstrap__servers="misc:9092",
        misc__deadletterqueue__topic__name="orders-misc",
        misc__deadletterqueue__acks="all",
        proxy__port="-1",
    )
    result = import_connect(props, "orders-sink", environ=ENV)
    assert "misc.deadletterqueue.acks" in result.unused
    assert "proxy.port" in result.unused
    assert result.settings.kusto.proxy is None


def test_problems_about_missing_settings_name_the_property_to_set() -> None:
    props = connect(
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
    )
    props.pop("aad.auth.appkey")
    assert problems(props) == [
        Problem("consumer.override.sasl.jaas.config", "required with sasl_mechanism PLAIN"),
        Problem("aad.auth.appkey", "required with strategy application"),
    ]


def test_the_reference_sample_properties_file_lists_what_is_missing() -> None:
    text = (
        "name=KustoSinkConnector\n"
        "connector.class=com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector\n"
        "tasks.max=1\n"
        "#topics=testing1,testing2\n"
        "#kusto.ingestion.url=https://ingest-{cluster}.kusto.windows.net/\n"
        "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
        "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
    )
    props = parse_properties(text)
    assert {p.setting for p in problems(props)} == {
        "consumer.override.bootstrap.servers",
        "kusto.ingestion.url",
        "kusto.tables.topics.mapping",
    }


def test_errors_tolerance_all_with_fail_explains_the_difference() -> None:
    props = connect(errors__tolerance="all", errors__deadletterqueue__topic__name="orders-dlq")
    reason = import_connect(props, "orders-sink", environ=ENV).unused["errors.tolerance"]
    assert "set behavior.on.error=ignore or log" in reason
    props["behavior.on.error"] = "log"
    reason = import_connect(props, "orders-sink", environ=ENV).unused["errors.tolerance"]
    assert reason == "behavior.on.error decides what happens to bad records"


def test_a_whole_jaas_config_may_come_from_a_reference() -> None:
    props = connect(
        consumer__override__security__protocol="SASL_SSL",
        consumer__override__sasl__mechanism="PLAIN",
        consumer__override__sasl__jaas__config="${env:KAFKA_JAAS}",
    )
    jaas = JAAS_PLAIN.replace("${env:KAFKA_PASSWORD}", "from-env")
    security = imported(props, ENV | {"KAFKA_JAAS": jaas}).kafka.security
    assert security.sasl_username == "alice"
    assert security.sasl_password is not None
    assert security.sasl_password.get_secret_value() == "from-env"
    (problem,) = problems(props)
    assert problem == Problem(
        "consumer.override.sasl.jaas.config", "environment variable KAFKA_JAAS is not set"
    )
