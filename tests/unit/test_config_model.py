"""The settings model: defaults, and one clear problem per mistake, naming the setting."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipelines.config import ConfigError, Problem, SinkSettings
from pipelines.config.validate import validate_settings

CLUSTER = "https://ingest-mycluster.westeurope.kusto.windows.net"


def settings(**changes: Any) -> dict[str, Any]:
    """A valid raw settings dict, with top-level ``changes`` applied."""
    raw: dict[str, Any] = {
        "name": "orders",
        "kafka": {"bootstrap_servers": "broker-1:9092,broker-2:9092"},
        "kusto": {
            "ingestion_url": CLUSTER,
            "auth": {
                "strategy": "application",
                "tenant": "contoso.onmicrosoft.com",
                "client_id": "app",
                "client_secret": "s3cret",
            },
        },
        "topics": ["orders"],
        "mappings": [{"topic": "orders", "db": "Sales", "table": "Orders", "format": "json"}],
    }
    raw.update(copy.deepcopy(changes))
    return raw


def problems(raw: dict[str, Any], environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        validate_settings(raw, environ=environ or {})
    return caught.value.problems


def test_defaults_follow_the_reference_connector() -> None:
    loaded = validate_settings(settings(), environ={})
    assert loaded.group_id == "kusto-sink-orders"
    assert loaded.flush_size_bytes == 1_048_576
    assert loaded.flush_interval_ms == 30_000
    assert loaded.behavior_on_error == "fail"
    assert (loaded.retry.max_time_ms, loaded.retry.backoff_ms) == (300_000, 10_000)
    assert loaded.delivery == "exactly_once"
    assert loaded.tasks_max == 1
    assert loaded.max_range_records == 1_000_000
    assert loaded.tempdir.name == "kusto-sink"
    assert loaded.kafka.auto_offset_reset == "earliest"
    assert loaded.kafka.security.protocol == "PLAINTEXT"
    assert loaded.value_converter.kind == "string"
    assert loaded.kusto.validate_tables is False
    assert loaded.dead_letter is None and loaded.misc_dead_letter is None


def test_settings_are_frozen_and_reject_unknown_fields() -> None:
    loaded = validate_settings(settings(), environ={})
    with pytest.raises(ValidationError):
        loaded.name = "other"  # type: ignore[misc]
    assert problems(settings(flush_size=5)) == [Problem("flush_size", "unknown setting")]


def test_query_url_is_the_ingestion_url_without_ingest_prefix() -> None:
    loaded = validate_settings(settings(), environ={})
    assert loaded.kusto.query_url == "https://mycluster.westeurope.kusto.windows.net"
    explicit = settings()
    explicit["kusto"]["query_url"] = "https://other.kusto.windows.net/"
    assert (
        validate_settings(explicit, environ={}).kusto.query_url == "https://other.kusto.windows.net"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://ingest-c.kusto.windows.net",
        "https://ingest-private-c.westus.kusto.windows.net",
        "https://c.kusto.azuresynapse.net",
        "https://c.kusto.data.microsoft.com",
        "https://c.kustomfa.windows.net",
        "https://ingest-c.kusto.chinacloudapi.cn",
        "https://ingest-c.kusto.usgovcloudapi.net",
        "https://ingest-c.z0.kusto.fabric.microsoft.com",
    ],
)
def test_known_kusto_hosts_are_accepted(url: str) -> None:
    raw = settings()
    raw["kusto"]["ingestion_url"] = url
    assert validate_settings(raw, environ={}).kusto.ingestion_url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://ingest-c.kusto.windows.net", "must be https://"),
        ("https://kusto.windows.net.evil.example", "not a known Kusto host"),
        ("https://evil.example/kusto.windows.net", "not a known Kusto host"),
        ("https://user:pw@c.kusto.windows.net", "no user, password, query or fragment"),
        ("https://c.kusto.windows.net?sig=pw", "no user, password, query or fragment"),
        ("c.kusto.windows.net", "is not a URL"),
    ],
)
def test_other_kusto_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    raw = settings()
    raw["kusto"]["ingestion_url"] = url
    found = problems(raw)
    assert [p.setting for p in found] == ["kusto.ingestion_url", "kusto.query_url"][: len(found)]
    assert reason in found[0].message
    assert "pw" not in str(found)


def test_loopback_http_is_the_emulator_and_needs_no_login() -> None:
    raw = settings()
    raw["kusto"] = {"ingestion_url": "http://127.0.0.1:8080"}
    kusto = validate_settings(raw, environ={}).kusto
    assert kusto.auth.strategy == "none"
    assert kusto.query_url == "http://127.0.0.1:8080"
    raw["kusto"] = {"ingestion_url": "http://localhost:8080", "auth": {"strategy": "application"}}
    assert [p.setting for p in problems(raw)] == [
        "kusto.auth.tenant",
        "kusto.auth.client_id",
        "kusto.auth.client_secret",
    ]


def test_azure_login_is_never_sent_over_http() -> None:
    raw = settings()
    raw["kusto"]["ingestion_url"] = "http://127.0.0.1:8080"
    (problem,) = problems(raw)
    assert problem.setting == "kusto.auth.strategy"
    assert "plain http" in problem.message


def test_strategy_none_is_only_for_the_emulator() -> None:
    raw = settings()
    raw["kusto"]["auth"] = {"strategy": "none"}
    (problem,) = problems(raw)
    assert problem == Problem(
        "kusto.auth.strategy", f"none works only with a loopback emulator, not {CLUSTER}"
    )


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"strategy": "managed_identity"}, []),
        ({"strategy": "MANAGED_IDENTITY", "client_id": "uami"}, []),
        ({"strategy": "workload_identity"}, []),
        ({"strategy": "azure_cli"}, []),
        ({"strategy": "default"}, []),
        ({"strategy": "az_dev_token", "token": "t"}, []),
        (
            {"strategy": "az_dev_token"},
            [("kusto.auth.token", "required with strategy az_dev_token")],
        ),
        (
            {"strategy": "application_certificate", "tenant": "t", "client_id": "c"},
            [("kusto.auth.certificate_path", "required with strategy application_certificate")],
        ),
        (
            {"strategy": "managed_identity", "client_secret": "x"},
            [("kusto.auth.client_secret", "has no effect with strategy managed_identity")],
        ),
        (
            {"strategy": "password"},
            [("kusto.auth.strategy", "Input should be 'none', 'application', ")],
        ),
    ],
)
def test_each_auth_strategy_takes_its_own_fields(
    auth: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    raw = settings()
    raw["kusto"]["auth"] = auth
    if not expected:
        validate_settings(raw, environ={})
        return
    found = problems(raw)
    assert [
        (p.setting, p.message[: len(m)]) for p, (_, m) in zip(found, expected, strict=True)
    ] == [(setting, message) for setting, message in expected]


def test_proxy_needs_host_and_port() -> None:
    raw = settings()
    raw["kusto"]["proxy"] = {"host": "proxy.local"}
    assert problems(raw) == [Problem("kusto.proxy.port", "required")]


def test_exactly_one_of_topics_and_topics_regex() -> None:
    assert problems(settings(topics_regex="orders.*"))[0] == Problem(
        "topics", "set exactly one of topics and topics_regex"
    )
    raw = settings(topics_regex="orders.*", mappings=[{"topic": "*", "db": "d", "table": "t"}])
    del raw["topics"]
    assert validate_settings(raw, environ={}).topics_regex == "orders.*"
    raw["topics_regex"] = "orders(["
    assert problems(raw)[0].setting == "topics_regex"


def test_every_topic_needs_a_mapping_or_the_wildcard() -> None:
    found = problems(settings(topics=["orders", "refunds"]))
    assert found == [
        Problem("mappings", "topic refunds has no mapping and there is no '*' mapping")
    ]
    mappings = [
        {"topic": "orders", "db": "Sales", "table": "Orders"},
        {"topic": "*", "db": "Sales", "table": "Other"},
    ]
    loaded = validate_settings(
        settings(topics=["orders", "refunds"], mappings=mappings), environ={}
    )
    assert [m.table for m in loaded.mapping_for("orders")] == ["Orders"]
    assert [m.table for m in loaded.mapping_for("refunds")] == ["Other"]
    without_wildcard = validate_settings(settings(), environ={})
    assert without_wildcard.mapping_for("refunds") == []


def test_a_topic_may_feed_several_tables_but_not_one_twice() -> None:
    twice = {"topic": "orders", "db": "Sales", "table": "Orders"}
    assert problems(settings(mappings=[twice, twice])) == [
        Problem("mappings[1]", "topic orders is mapped twice to Sales.Orders")
    ]
    audit = {"topic": "orders", "db": "Audit", "table": "Orders"}
    loaded = validate_settings(settings(mappings=[twice, audit]), environ={})
    assert len(loaded.mapping_for("orders")) == 2


def test_mapping_entries_are_validated() -> None:
    mapping = {"topic": "orders", "db": "Sales;drop", "format": "xml", "mapping": "m'1"}
    found = problems(settings(mappings=[mapping]))
    by_setting = {p.setting: p.message for p in found}
    assert set(by_setting) == {
        "mappings[0].db",
        "mappings[0].table",
        "mappings[0].format",
        "mappings[0].mapping",
    }
    assert "not a valid Kusto name" in by_setting["mappings[0].db"]
    assert by_setting["mappings[0].table"] == "required"
    assert "'json', 'multijson', 'csv'" in by_setting["mappings[0].format"]


def test_mapping_defaults_and_format_spelling() -> None:
    mappings = [
        {"topic": "orders", "db": "Sales", "table": "Orders"},
        {"topic": "orders", "db": "Sales", "table": "Orders2", "format": "SingleJSON"},
        {"topic": "orders", "db": "Sales", "table": "Orders3", "format": "MultiJson"},
    ]
    loaded = validate_settings(settings(mappings=mappings), environ={})
    first = loaded.mappings[0]
    assert (first.format, first.mapping, first.streaming, first.tombstones) == (
        "csv",
        None,
        False,
        "skip",
    )
    assert [m.format for m in loaded.mappings[1:]] == ["json", "multijson"]


def test_whole_file_formats_need_the_bytes_converter() -> None:
    parquet = {"topic": "orders", "db": "Sales", "table": "Orders", "format": "parquet"}
    assert problems(settings(mappings=[parquet])) == [
        Problem(
            "mappings[0].format",
            "parquet records are whole files and need the bytes converter, not string",
        )
    ]
    loaded = validate_settings(
        settings(mappings=[parquet], value_converter={"kind": "bytes"}), environ={}
    )
    assert loaded.value_converter_for(loaded.mappings[0]).kind == "bytes"


@pytest.mark.parametrize("kind", ["avro", "json_schema", "protobuf"])
def test_registry_converters_need_a_registry_url(kind: str) -> None:
    assert problems(settings(value_converter={"kind": kind})) == [
        Problem("value_converter.schema_registry_url", f"required with kind {kind}")
    ]
    assert problems(settings(key_converter={"kind": kind})) == [
        Problem("key_converter.schema_registry_url", f"required with kind {kind}")
    ]


def test_converter_settings_that_do_not_fit_the_kind() -> None:
    found = problems(
        settings(
            value_converter={
                "kind": "string",
                "schema_registry_url": "http://r:8081",
                "schemas_enable": True,
            }
        )
    )
    assert found == [
        Problem("value_converter.schema_registry_url", "has no effect with kind string"),
        Problem("value_converter.schemas_enable", "has no effect with kind string"),
    ]
    assert problems(settings(value_converter={"kind": "xml"}))[0].setting == "value_converter.kind"
    found = problems(
        settings(
            value_converter={
                "kind": "avro",
                "schema_registry_url": "ftp://r",
                "registry_username": "u",
            }
        )
    )
    assert [p.setting for p in found] == ["value_converter.schema_registry_url"]
    found = problems(
        settings(
            value_converter={
                "kind": "avro",
                "schema_registry_url": "http://r:8081",
                "registry_username": "u",
            }
        )
    )
    assert found == [
        Problem("value_converter.registry_password", "registry_username and password go together")
    ]


def test_a_mapping_may_have_its_own_converter() -> None:
    mappings = [
        {
            "topic": "orders",
            "db": "Sales",
            "table": "Orders",
            "format": "avro",
            "value_converter": {"kind": "avro", "schema_registry_url": "http://127.0.0.1:8081"},
            "evolve_schema": True,
        },
    ]
    loaded = validate_settings(settings(mappings=mappings), environ={})
    assert loaded.value_converter_for(loaded.mappings[0]).kind == "avro"
    mappings[0]["value_converter"] = {"kind": "json"}
    assert problems(settings(mappings=mappings)) == [
        Problem(
            "mappings[0].evolve_schema",
            "needs a schema-registry converter (avro, json_schema, protobuf), not json",
        )
    ]


def test_log_and_ignore_without_a_dead_letter_topic_load_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As the reference's quickstart writes it; the delivery then stops at a bad record
    # rather than drop it (tests/faults cover the delivery side).
    for behavior in ("log", "IGNORE"):
        loaded = validate_settings(settings(behavior_on_error=behavior), environ={})
        assert loaded.dead_letter is None
    assert "stops its partition instead of being dropped" in caplog.text
    loaded = validate_settings(
        settings(
            behavior_on_error="log",
            dead_letter={"topic": "orders-dlq", "bootstrap_servers": "dlq:9092"},
        ),
        environ={},
    )
    assert loaded.dead_letter is not None and loaded.dead_letter.topic == "orders-dlq"


def test_dead_letter_topic_without_servers_is_refused() -> None:
    found = problems(settings(dead_letter={"topic": "dlq"}, misc_dead_letter={"topic": "misc"}))
    assert found == [
        Problem("dead_letter.bootstrap_servers", "required"),
        Problem("misc_dead_letter.bootstrap_servers", "required"),
    ]


def test_tombstones_to_dead_letter_need_the_topic() -> None:
    mapping = {"topic": "orders", "db": "Sales", "table": "Orders", "tombstones": "dead_letter"}
    assert problems(settings(mappings=[mapping])) == [
        Problem("mappings[0].tombstones", "dead_letter needs a dead_letter topic")
    ]


def test_numbers_have_the_reference_lower_bounds() -> None:
    found = problems(
        settings(flush_size_bytes=10, flush_interval_ms=0, tasks_max=0, retry={"backoff_ms": 0})
    )
    assert [p.setting for p in found] == [
        "flush_size_bytes",
        "flush_interval_ms",
        "retry.backoff_ms",
        "tasks_max",
    ]
    assert found[0].message == "Input should be greater than or equal to 100"


def test_bootstrap_servers_need_ports() -> None:
    raw = settings(kafka={"bootstrap_servers": "broker-1"})
    assert problems(raw) == [Problem("kafka.bootstrap_servers", "'broker-1' is not host:port")]
    raw = settings(kafka={"bootstrap_servers": ["a:9092", " b:9093 "]})
    assert validate_settings(raw, environ={}).kafka.bootstrap_servers == "a:9092,b:9093"


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        ({"protocol": "SASL_SSL"}, [("sasl_mechanism", "required with protocol SASL_SSL")]),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"},
            [
                ("sasl_username", "required with sasl_mechanism PLAIN"),
                ("sasl_password", "required with sasl_mechanism PLAIN"),
            ],
        ),
        (
            {"protocol": "PLAINTEXT", "sasl_mechanism": "PLAIN", "ssl_ca_location": "/ca.pem"},
            [
                ("sasl_mechanism", "has no effect with protocol PLAINTEXT"),
                ("ssl_ca_location", "has no effect with protocol PLAINTEXT"),
            ],
        ),
        (
            {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER"},
            [("oauthbearer", "required with sasl_mechanism OAUTHBEARER")],
        ),
        (
            {
                "protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "OAUTHBEARER",
                "oauthbearer": {"token_endpoint_url": "https://login/token"},
            },
            [
                ("oauthbearer.client_id", "required with token_endpoint_url"),
                ("oauthbearer.client_secret", "required with token_endpoint_url"),
            ],
        ),
        (
            {"protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "kerberos_keytab": "/k.keytab"},
            [("kerberos_principal", "required with kerberos_keytab")],
        ),
        (
            {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "scram-sha-512",
                "sasl_username": "u",
                "sasl_password": "p",
                "ssl_ca_location": "/ca.pem",
            },
            [],
        ),
    ],
)
def test_kafka_security_is_consistent(
    security: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    raw = settings(kafka={"bootstrap_servers": "b:9093", "security": security})
    if not expected:
        assert validate_settings(raw, environ={}).kafka.security.sasl_mechanism == "SCRAM-SHA-512"
        return
    found = [(p.setting, p.message) for p in problems(raw)]
    assert [(s, m[: len(e)]) for (s, m), (_, e) in zip(found, expected, strict=True)] == [
        (f"kafka.security.{field}", message) for field, message in expected
    ]


def test_librdkafka_overrides_cannot_carry_security_or_group() -> None:
    raw = settings(
        kafka={
            "bootstrap_servers": "b:9092",
            "librdkafka": {"sasl.password": "x", "fetch.max.bytes": 1024},
        }
    )
    (problem,) = problems(raw)
    assert problem.setting == "kafka.librdkafka"
    assert problem.message.startswith("sasl.password: set through")
    raw["kafka"]["librdkafka"] = {"fetch.max.bytes": 1024, "check.crcs": True}
    loaded = validate_settings(raw, environ={})
    assert loaded.kafka.librdkafka == {"fetch.max.bytes": "1024", "check.crcs": "true"}


def test_names_and_topics_follow_the_rules_of_their_system() -> None:
    found = problems(settings(name="my sink", topics=["bad topic"]))
    assert [p.setting for p in found] == ["name", "topics[0]"]


def test_all_problems_are_reported_at_once() -> None:
    raw = settings(behavior_on_error="sometimes", flush_interval_ms="soon")
    raw["kusto"]["ingestion_url"] = "https://example.com"
    raw.pop("mappings")
    found = {p.setting for p in problems(raw)}
    assert found == {
        "kusto.ingestion_url",
        "kusto.query_url",
        "mappings",
        "flush_interval_ms",
        "behavior_on_error",
    }


def test_secrets_never_show_in_repr_or_errors() -> None:
    loaded = validate_settings(settings(), environ={})
    assert "s3cret" not in repr(loaded) and "s3cret" not in str(loaded)
    assert loaded.kusto.auth.client_secret is not None
    assert loaded.kusto.auth.client_secret.get_secret_value() == "s3cret"
    raw = settings()
    raw["kusto"]["auth"]["client_secret"] = ["s3cret"]
    assert "s3cret" not in str(problems(raw))


def test_model_fields_are_described() -> None:
    undescribed = [
        f"{model.__name__}.{name}"
        for model in _models(SinkSettings)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undescribed == []


def _models(model: type, seen: set[type] | None = None) -> set[type]:
    seen = seen if seen is not None else set()
    seen.add(model)
    for field in model.model_fields.values():  # type: ignore[attr-defined]
        for candidate in _types_in(field.annotation):
            if hasattr(candidate, "model_fields") and candidate not in seen:
                _models(candidate, seen)
    return seen


def _types_in(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *[t for arg in args for t in _types_in(arg)]]


def test_tempdir_is_a_path() -> None:
    loaded = validate_settings(settings(tempdir="/var/tmp/sink"), environ={})
    assert loaded.tempdir == Path("/var/tmp/sink")


def test_topics_may_be_a_comma_separated_string() -> None:
    assert validate_settings(settings(topics=" orders,"), environ={}).topics == ["orders"]
    assert problems(settings(topics="orders, orders")) == [
        Problem("topics", "listed more than once: orders")
    ]


def test_mappings_and_dead_letters_must_fit_the_sinks_topics() -> None:
    mappings = [
        {"topic": "orders", "db": "Sales", "table": "Orders"},
        {"topic": "ordres", "db": "Sales", "table": "Orders"},
    ]
    dead_letter = {"topic": "orders", "bootstrap_servers": "b:9092"}
    assert problems(settings(mappings=mappings, dead_letter=dead_letter)) == [
        Problem("dead_letter.topic", "orders is a source topic of this sink"),
        Problem("mappings[1].topic", "ordres is not a topic of this sink"),
    ]
    raw = settings(topics_regex="orders-.*", mappings=[mappings[0] | {"topic": "orders-eu"}])
    del raw["topics"]
    loaded = validate_settings(raw, environ={})
    assert loaded.reads_topic("orders-eu") and not loaded.reads_topic("xorders-eu")
