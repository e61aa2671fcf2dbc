"""The sink's settings: typed, frozen pydantic models, validated all at once.

Field names are ours; the Kafka Connect property each one replaces is named in its
description (see :mod:`pipelines.config.connect` for the import). Checks that span several
fields report every problem they find, each naming its field, through :func:`_report`.
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from pipelines.config.references import SecretText

KUSTO_HOST_SUFFIXES = (
    ".kusto.windows.net",
    ".kusto.azuresynapse.net",
    ".kusto.data.microsoft.com",
    ".kustomfa.windows.net",
    ".kusto.chinacloudapi.cn",
    ".kusto.usgovcloudapi.net",
    ".kusto.fabric.microsoft.com",
)
"""Hosts a Kusto URL may name: Azure's public and sovereign clouds, Synapse and Fabric.

Anything else is refused so that a typo or a hostile config cannot send Azure AD tokens
to a foreign server (the reference connector's SSRF guard does the same)."""

FORMATS = ("json", "multijson", "csv", "tsv", "psv", "txt", "avro", "apacheavro", "parquet", "orc")
WHOLE_FILE_FORMATS = ("parquet", "orc")
REGISTRY_CONVERTERS = ("avro", "json_schema", "protobuf")

_KUSTO_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,1024}")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._\-]{1,249}")
_SINK_NAME = re.compile(r"[A-Za-z0-9._\-]{1,200}")
_FORMAT_ALIASES = {"singlejson": "json"}  # the reference treats every JSON flavour as JSON


def _report(problems: list[tuple[str, str]]) -> None:
    """Raise every ``(field, message)`` problem found by a cross-field check at once."""
    if problems:
        raise PydanticCustomError(
            "sink_settings",
            "{count} invalid setting(s)",
            {"count": len(problems), "problems": problems},
        )


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _kusto_name(value: str) -> str:
    if not _KUSTO_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kusto name "
            "(letters, digits, '_', '.', '-'; at most 1024 characters)"
        )
    return value


def _topic_name(value: str) -> str:
    if not _TOPIC_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kafka topic name "
            "(letters, digits, '.', '_', '-'; at most 249 characters)"
        )
    return value


def _format(value: Any) -> Any:
    value = _lower(value)
    return _FORMAT_ALIASES.get(value, value)


def _librdkafka_values(value: Any) -> Any:
    # YAML users write numbers and booleans; librdkafka wants every value as text.
    if isinstance(value, dict):
        return {
            key: str(item).lower() if isinstance(item, bool) else str(item)
            for key, item in value.items()
        }
    return value


KustoName = Annotated[str, AfterValidator(_kusto_name)]
TopicName = Annotated[str, AfterValidator(_topic_name)]
Format = Annotated[
    Literal[
        "json", "multijson", "csv", "tsv", "psv", "txt", "avro", "apacheavro", "parquet", "orc"
    ],
    BeforeValidator(_format),
]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]
ConverterKind = Literal["string", "json", "avro", "json_schema", "protobuf", "bytes"]
AuthStrategy = Literal[
    "none",
    "application",
    "application_certificate",
    "managed_identity",
    "workload_identity",
    "azure_cli",
    "default",
    "az_dev_token",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _is_set(model: BaseModel, field: str) -> bool:
    return getattr(model, field) not in (None, {}, "")


# --- Kafka ----------------------------------------------------------------------------------


class OAuthBearerSettings(_Model):
    """SASL/OAUTHBEARER: OIDC client credentials, or an unsecured token (development only)."""

    token_endpoint_url: str | None = Field(
        None,
        description="OIDC token endpoint (sasl.oauthbearer.token.endpoint.url); "
        "without it an unsecured JWT for `principal` is used, which only test clusters accept.",
    )
    client_id: str | None = Field(None, description="OIDC client id (JAAS clientId).")
    client_secret: SecretText | None = Field(
        None, description="OIDC client secret (JAAS clientSecret)."
    )
    scope: str | None = Field(None, description="OIDC scope (JAAS scope).")
    extensions: dict[str, str] = Field(
        default_factory=dict, description="SASL extensions (JAAS extension_NAME=VALUE)."
    )
    principal: str | None = Field(
        None, description="Subject of the unsecured JWT (JAAS unsecuredLoginStringClaim_sub)."
    )

    @_model_validator(mode="after")
    def _complete(self) -> OAuthBearerSettings:
        problems = []
        if self.token_endpoint_url:
            problems += [
                (field, "required with token_endpoint_url (OIDC client credentials)")
                for field in ("client_id", "client_secret")
                if not _is_set(self, field)
            ]
        elif not self.principal:
            problems.append(("token_endpoint_url", "required, or `principal` for unsecured JWT"))
        _report(problems)
        return self


class KafkaSecurity(_Model):
    """How to reach a secured cluster (security.protocol, sasl.*, ssl.* in Kafka's terms)."""

    protocol: Annotated[SecurityProtocol, BeforeValidator(_upper)] = Field(
        "PLAINTEXT", description="security.protocol"
    )
    sasl_mechanism: Annotated[SaslMechanism | None, BeforeValidator(_upper)] = Field(
        None, description="sasl.mechanism; required with SASL_PLAINTEXT and SASL_SSL"
    )
    sasl_username: str | None = Field(None, description="PLAIN/SCRAM user (from sasl.jaas.config)")
    sasl_password: SecretText | None = Field(
        None, description="PLAIN/SCRAM password (from sasl.jaas.config)"
    )
    kerberos_service_name: str = Field("kafka", description="sasl.kerberos.service.name")
    kerberos_principal: str | None = Field(None, description="GSSAPI principal (JAAS principal)")
    kerberos_keytab: Path | None = Field(None, description="GSSAPI keytab file (JAAS keyTab)")
    oauthbearer: OAuthBearerSettings | None = Field(None, description="SASL/OAUTHBEARER settings")
    ssl_ca_location: Path | None = Field(
        None, description="PEM file of trusted CA certificates (ssl.truststore.location, PEM)"
    )
    ssl_ca_pem: str | None = Field(
        None, description="Trusted CA certificates as PEM text (ssl.truststore.certificates)"
    )
    ssl_certificate_location: Path | None = Field(None, description="Client certificate, PEM")
    ssl_certificate_pem: str | None = Field(
        None, description="Client certificate chain as PEM text (ssl.keystore.certificate.chain)"
    )
    ssl_key_location: Path | None = Field(None, description="Client private key, PEM")
    ssl_key_pem: SecretText | None = Field(
        None, description="Client private key as PEM text (ssl.keystore.key)"
    )
    ssl_key_password: SecretText | None = Field(None, description="ssl.key.password")
    ssl_keystore_location: Path | None = Field(
        None, description="PKCS#12 keystore with client certificate and key (ssl.keystore.*)"
    )
    ssl_keystore_password: SecretText | None = Field(None, description="ssl.keystore.password")
    ssl_verify_hostname: bool = Field(
        True, description="Check the broker's host name (ssl.endpoint.identification.algorithm)"
    )

    @_model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        problems: list[tuple[str, str]] = []
        sasl = self.protocol.startswith("SASL_")
        mechanism = self.sasl_mechanism
        if sasl and mechanism is None:
            problems.append(("sasl_mechanism", f"required with protocol {self.protocol}"))
        if not sasl and mechanism is not None:
            problems.append(("sasl_mechanism", f"has no effect with protocol {self.protocol}"))
            mechanism = None  # one problem is enough; do not also ask for its credentials
        credentials = mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        for field in ("sasl_username", "sasl_password"):
            if credentials and not _is_set(self, field):
                problems.append((field, f"required with sasl_mechanism {mechanism}"))
            if not credentials and _is_set(self, field):
                problems.append((field, f"has no effect with sasl_mechanism {mechanism}"))
        if mechanism == "OAUTHBEARER" and self.oauthbearer is None:
            problems.append(("oauthbearer", "required with sasl_mechanism OAUTHBEARER"))
        if mechanism != "OAUTHBEARER" and self.oauthbearer is not None:
            problems.append(("oauthbearer", f"has no effect with sasl_mechanism {mechanism}"))
        for field in ("kerberos_principal", "kerberos_keytab"):
            if mechanism != "GSSAPI" and _is_set(self, field):
                problems.append((field, f"has no effect with sasl_mechanism {mechanism}"))
        if self.kerberos_keytab is not None and not self.kerberos_principal:
            problems.append(("kerberos_principal", "required with kerberos_keytab"))
        if not self.protocol.endswith("SSL"):
            problems += [
                (field, f"has no effect with protocol {self.protocol}")
                for field in type(self).model_fields
                if field.startswith("ssl_") and field != "ssl_verify_hostname"
                if _is_set(self, field)
            ]
        _report(problems)
        return self


def _bootstrap_servers(value: Any) -> Any:
    if isinstance(value, list | tuple):
        value = ",".join(str(item) for item in value)
    if not isinstance(value, str):
        return value
    servers = [server.strip() for server in value.split(",") if server.strip()]
    if not servers:
        raise ValueError("at least one host:port is required")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{server!r} is not host:port")
    return ",".join(servers)


_RESERVED_CLIENT_KEYS = ("bootstrap.servers", "security.protocol", "sasl.", "ssl.", "group.id")


class KafkaConnection(_Model):
    """Where a Kafka cluster is and how to log in; enough for any client of it."""

    bootstrap_servers: Annotated[str, BeforeValidator(_bootstrap_servers)] = Field(
        description="Comma-separated host:port list (bootstrap.servers)"
    )
    security: KafkaSecurity = Field(default_factory=KafkaSecurity, description="TLS and SASL")
    librdkafka: Annotated[dict[str, str], BeforeValidator(_librdkafka_values)] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for every client of this cluster, applied last",
    )

    @field_validator("librdkafka")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.startswith(_RESERVED_CLIENT_KEYS))
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)}: set through bootstrap_servers, security or group_id, "
                "so that secrets stay out of plain maps and one place decides each key"
            )
        return value


class KafkaSettings(KafkaConnection):
    """The source cluster, and how the sink's consumer starts on it."""

    auto_offset_reset: Annotated[Literal["earliest", "latest"], BeforeValidator(_lower)] = Field(
        "earliest",
        description="Where to start a partition with no committed offset "
        "(consumer.override.auto.offset.reset; Kafka Connect's default is earliest)",
    )
    max_poll_interval_ms: int = Field(
        300_000, ge=1, description="consumer.override.max.poll.interval.ms"
    )


# --- Kusto ----------------------------------------------------------------------------------


def is_loopback_url(url: str) -> bool:
    """True for URLs on this machine (the local Kusto emulator)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kusto_url(value: str) -> str:
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"{value!r} is not a URL (expected https://<cluster>.kusto.windows.net)")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(f"{value!r}: a Kusto URL has no user, query or fragment")
    if is_loopback_url(value):
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r}: scheme must be http or https")
    elif parts.scheme != "https":
        raise ValueError(
            f"{value!r}: must be https:// (plain http is accepted only for loopback emulators)"
        )
    elif not host.endswith(KUSTO_HOST_SUFFIXES):
        raise ValueError(
            f"{value!r}: {host} is not a known Kusto host "
            f"(expected *{', *'.join(KUSTO_HOST_SUFFIXES)}), refused so that Azure AD tokens "
            "are never sent to another server"
        )
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def query_url_for(ingestion_url: str) -> str:
    """The engine (query) URL of a cluster, from its ingestion URL: drop ``ingest-``."""
    parts = urlsplit(ingestion_url)
    netloc = parts.netloc.removeprefix("ingest-")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_AUTH_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # strategy: (required fields, further allowed fields)
    "none": ((), ()),
    "application": (("tenant", "client_id", "client_secret"), ("authority_host",)),
    "application_certificate": (
        ("tenant", "client_id", "certificate_path"),
        ("certificate_password", "authority_host"),
    ),
    "managed_identity": ((), ("client_id",)),
    "workload_identity": ((), ("tenant", "client_id", "authority_host")),
    "azure_cli": ((), ("tenant",)),
    "default": ((), ("tenant", "client_id", "authority_host")),
    "az_dev_token": (("token",), ()),
}


class AuthSettings(_Model):
    """How the sink authenticates to Kusto (aad.auth.* in Kafka Connect)."""

    strategy: Annotated[AuthStrategy, BeforeValidator(_lower)] = Field(
        description="aad.auth.strategy; none only for a loopback emulator"
    )
    tenant: str | None = Field(
        None, description="Azure AD tenant id or domain (aad.auth.authority)"
    )
    client_id: str | None = Field(
        None, description="Application or managed identity client id (aad.auth.appid)"
    )
    client_secret: SecretText | None = Field(None, description="Application key (aad.auth.appkey)")
    certificate_path: Path | None = Field(None, description="PEM or PKCS#12 client certificate")
    certificate_password: SecretText | None = Field(None, description="Certificate password")
    token: SecretText | None = Field(
        None, description="Access token for az_dev_token, development only (aad.auth.accesstoken)"
    )
    authority_host: str | None = Field(
        None, description="Azure AD host for sovereign clouds, e.g. https://login.chinacloudapi.cn"
    )

    @_model_validator(mode="after")
    def _fields_of_strategy(self) -> AuthSettings:
        required, optional = _AUTH_FIELDS[self.strategy]
        problems = [
            (field, f"required with strategy {self.strategy}")
            for field in required
            if not _is_set(self, field)
        ]
        problems += [
            (field, f"has no effect with strategy {self.strategy}")
            for field in type(self).model_fields
            if field != "strategy" and field not in required + optional and _is_set(self, field)
        ]
        _report(problems)
        return self


class ProxySettings(_Model):
    """An HTTP proxy for Kusto traffic (proxy.host, proxy.port)."""

    host: str = Field(min_length=1, description="proxy.host")
    port: int = Field(ge=1, le=65535, description="proxy.port")


class KustoSettings(_Model):
    """The Kusto cluster and how to reach it."""

    ingestion_url: str = Field(description="kusto.ingestion.url (older name: kusto.url)")
    query_url: str = Field(
        description="kusto.query.url; default: the ingestion URL without ingest-"
    )
    auth: AuthSettings = Field(description="Azure AD authentication")
    proxy: ProxySettings | None = Field(None, description="HTTP proxy for Kusto requests")
    validate_tables: bool = Field(
        False,
        description="Check at start that every table exists and is writable "
        "(kusto.validation.table.enable)",
    )

    @_model_validator(mode="before")
    @classmethod
    def _defaults_from_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("ingestion_url"), str):
            return data
        data = dict(data)
        data.setdefault("query_url", query_url_for(data["ingestion_url"].strip()))
        if isinstance(data.get("auth", {}), dict):
            loopback = is_loopback_url(data["ingestion_url"])
            auth = dict(data.get("auth", {}))
            # The reference defaults to an AAD application; a local emulator needs no login.
            auth.setdefault("strategy", "none" if loopback else "application")
            data["auth"] = auth
        return data

    @field_validator("ingestion_url", "query_url")
    @classmethod
    def _known_host(cls, value: str) -> str:
        return _kusto_url(value)

    @_model_validator(mode="after")
    def _auth_fits_urls(self) -> KustoSettings:
        strategy = self.auth.strategy
        urls = dict.fromkeys((self.ingestion_url, self.query_url))
        if strategy == "none" and (remote := [u for u in urls if not is_loopback_url(u)]):
            _report(
                [("auth.strategy", f"none works only with a loopback emulator, not {remote[0]}")]
            )
        if strategy != "none" and (plain := [u for u in urls if urlsplit(u).scheme == "http"]):
            _report(
                [
                    (
                        "auth.strategy",
                        f"{strategy} would send Azure AD tokens over plain http to {plain[0]}; "
                        "use strategy none for the local emulator",
                    )
                ]
            )
        return self


# --- What goes where ------------------------------------------------------------------------


class ConverterSettings(_Model):
    """How record keys or values are read (key.converter / value.converter)."""

    kind: Annotated[ConverterKind, BeforeValidator(_lower)] = Field(
        "string", description="string, json, avro, json_schema, protobuf or bytes"
    )
    schema_registry_url: str | None = Field(
        None,
        description="value.converter.schema.registry.url; required for avro, "
        "json_schema and protobuf",
    )
    schemas_enable: bool = Field(
        False,
        description="JSON records carry a {schema, payload} envelope "
        "(value.converter.schemas.enable)",
    )
    registry_username: str | None = Field(None, description="Schema registry basic-auth user")
    registry_password: SecretText | None = Field(None, description="Schema registry password")

    @field_validator("schema_registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @_model_validator(mode="after")
    def _consistent(self) -> ConverterSettings:
        problems = []
        registry = self.kind in REGISTRY_CONVERTERS
        if registry and not self.schema_registry_url:
            problems.append(("schema_registry_url", f"required with kind {self.kind}"))
        if not registry:
            problems += [
                (field, f"has no effect with kind {self.kind}")
                for field in ("schema_registry_url", "registry_username", "registry_password")
                if _is_set(self, field)
            ]
        if self.schemas_enable and self.kind != "json":
            problems.append(("schemas_enable", f"has no effect with kind {self.kind}"))
        if _is_set(self, "registry_username") != _is_set(self, "registry_password"):
            problems.append(("registry_password", "registry_username and password go together"))
        _report(problems)
        return self


class TopicMapping(_Model):
    """Records of one topic go to one table (an entry of kusto.tables.topics.mapping)."""

    topic: str = Field(description="Kafka topic, or '*' for every topic without its own mapping")
    db: KustoName = Field(description="Kusto database")
    table: KustoName = Field(description="Kusto table")
    format: Format = Field("csv", description="Kusto ingestion format (the reference's default)")
    mapping: KustoName | None = Field(None, description="Name of the table's ingestion mapping")
    streaming: bool = Field(False, description="Streaming ingestion, queued for large batches")
    value_converter: ConverterSettings | None = Field(
        None, description="This topic's value converter, if not the sink's"
    )
    tombstones: Annotated[Literal["skip", "dead_letter"], BeforeValidator(_lower)] = Field(
        "skip", description="What to do with records whose value is null"
    )
    evolve_schema: bool = Field(
        False,
        description="Extend the table and its mapping when the writer schema gains fields "
        "(.create-merge table); needs a schema-registry converter",
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return value if value == "*" else _topic_name(value)


class RetrySettings(_Model):
    """Retries of transient errors with exponential back-off."""

    max_time_ms: int = Field(300_000, ge=0, description="errors.retry.max.time.ms")
    backoff_ms: int = Field(10_000, ge=1, description="errors.retry.backoff.time.ms")


class DeadLetterSettings(KafkaConnection):
    """A dead-letter topic and the cluster it lives on."""

    topic: TopicName = Field(
        description="errors.deadletterqueue.topic.name or misc.deadletterqueue.topic.name"
    )


def _default_tempdir() -> Path:
    return Path(tempfile.gettempdir()) / "kusto-sink"


class SinkSettings(_Model):
    """Everything one sink needs: where records come from, where they go, and how."""

    name: str = Field(description="Sink name (Kafka Connect `name`); names groups and ids")
    group_id: str = Field(
        description="Consumer group holding committed offsets; default kusto-sink-<name>, "
        "connect-<name> when imported from Kafka Connect"
    )
    kafka: KafkaSettings = Field(description="The source Kafka cluster")
    kusto: KustoSettings = Field(description="The Kusto cluster")
    topics: list[TopicName] | None = Field(None, description="topics; or topics_regex")
    topics_regex: str | None = Field(None, description="topics.regex; or topics")
    mappings: list[TopicMapping] = Field(min_length=1, description="kusto.tables.topics.mapping")
    value_converter: ConverterSettings = Field(
        default_factory=ConverterSettings, description="value.converter"
    )
    key_converter: ConverterSettings = Field(
        default_factory=ConverterSettings, description="key.converter"
    )
    flush_size_bytes: int = Field(
        1_048_576, ge=100, description="Batch size in raw bytes per partition (flush.size.bytes)"
    )
    flush_interval_ms: int = Field(
        30_000, ge=100, description="Longest wait before a partition is flushed (flush.interval.ms)"
    )
    max_range_records: int = Field(
        1_000_000, ge=1, description="Largest offset range one run reads from a partition"
    )
    lag_threshold_records: int = Field(
        100_000,
        ge=1,
        description="A partition this many records behind gets a run at once, "
        "without waiting for flush_interval_ms (the lag sensor)",
    )
    tempdir: Path = Field(
        default_factory=_default_tempdir, description="Staging directory (tempdir.path)"
    )
    behavior_on_error: Annotated[Literal["fail", "log", "ignore"], BeforeValidator(_lower)] = Field(
        "fail", description="behavior.on.error"
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="errors.retry.*")
    dead_letter: DeadLetterSettings | None = Field(
        None, description="Records that cannot be decoded (errors.deadletterqueue.*)"
    )
    misc_dead_letter: DeadLetterSettings | None = Field(
        None,
        description="Records not delivered for other reasons, retries spent "
        "(misc.deadletterqueue.*)",
    )
    delivery: Annotated[Literal["exactly_once", "at_least_once"], BeforeValidator(_lower)] = Field(
        "exactly_once", description="exactly_once (tagged batches) or at_least_once"
    )
    tasks_max: int = Field(1, ge=1, description="Parallelism hint (tasks.max)")

    @_model_validator(mode="before")
    @classmethod
    def _default_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and "group_id" not in data and isinstance(data.get("name"), str):
            data = {**data, "group_id": f"kusto-sink-{data['name']}"}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SINK_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r}: letters, digits, '.', '_', '-' only (it names groups and ids)"
            )
        return value

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("at least one topic is required")
        return value

    @field_validator("topics_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"{value!r} is not a regular expression: {error}") from None
        return value

    @_model_validator(mode="after")
    def _consistent(self) -> SinkSettings:
        problems: list[tuple[str, str]] = []
        if (self.topics is None) == (self.topics_regex is None):
            problems.append(("topics", "set exactly one of topics and topics_regex"))
        for topic in self.topics or []:
            if not self.mapping_for(topic):
                problems.append(
                    ("mappings", f"topic {topic} has no mapping and there is no '*' mapping")
                )
        seen: set[tuple[str, str, str]] = set()
        for index, mapping in enumerate(self.mappings):
            where = f"mappings[{index}]"
            target = (mapping.topic, mapping.db, mapping.table)
            if target in seen:
                problems.append(
                    (
                        where,
                        f"topic {mapping.topic} is mapped twice to {mapping.db}.{mapping.table}",
                    )
                )
            seen.add(target)
            converter = self.value_converter_for(mapping)
            if mapping.format in WHOLE_FILE_FORMATS and converter.kind != "bytes":
                problems.append(
                    (
                        f"{where}.format",
                        f"{mapping.format} records are whole files and need the bytes "
                        f"converter, not {converter.kind}",
                    )
                )
            if mapping.evolve_schema and converter.kind not in REGISTRY_CONVERTERS:
                problems.append(
                    (
                        f"{where}.evolve_schema",
                        f"needs a schema-registry converter (avro, json_schema, protobuf), "
                        f"not {converter.kind}",
                    )
                )
            if mapping.tombstones == "dead_letter" and self.dead_letter is None:
                problems.append((f"{where}.tombstones", "dead_letter needs a dead_letter topic"))
        if self.behavior_on_error != "fail" and self.dead_letter is None:
            problems.append(
                (
                    "behavior_on_error",
                    f"{self.behavior_on_error} sends records that cannot be decoded to the "
                    "dead-letter topic: configure dead_letter, or use fail",
                )
            )
        _report(problems)
        return self

    def mapping_for(self, topic: str) -> list[TopicMapping]:
        """The mappings of ``topic``: its own, else the '*' fallback; [] if neither."""
        own = [mapping for mapping in self.mappings if mapping.topic == topic]
        return own or [mapping for mapping in self.mappings if mapping.topic == "*"]

    def value_converter_for(self, mapping: TopicMapping) -> ConverterSettings:
        """The converter for values of ``mapping``'s topic: its own, else the sink's."""
        return mapping.value_converter or self.value_converter
