"""Settings of a Kafka cluster connection: servers, TLS and SASL, consumer start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from pipelines.config.base import FrozenModel, is_set, lower, report_problems, upper
from pipelines.config.references import SecretText

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]
_LIBRDKAFKA_SESSION_TIMEOUT_MS = 45_000  # librdkafka's default session.timeout.ms


def _librdkafka_values(value: Any) -> Any:
    # YAML users write numbers and booleans; librdkafka wants every value as text.
    if isinstance(value, dict):
        return {
            key: str(item).lower() if isinstance(item, bool) else str(item)
            for key, item in value.items()
        }
    return value


class OAuthBearerSettings(FrozenModel):
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

    @model_validator(mode="after")
    def _complete(self) -> OAuthBearerSettings:
        problems = []
        if self.token_endpoint_url:
            problems += [
                (field, "required with token_endpoint_url (OIDC client credentials)")
                for field in ("client_id", "client_secret")
                if not is_set(self, field)
            ]
        elif not self.principal:
            problems.append(("token_endpoint_url", "required, or `principal` for unsecured JWT"))
        report_problems(problems)
        return self


class KafkaSecurity(FrozenModel):
    """How to reach a secured cluster (security.protocol, sasl.*, ssl.* in Kafka's terms)."""

    protocol: Annotated[SecurityProtocol, BeforeValidator(upper)] = Field(
        "PLAINTEXT", description="security.protocol"
    )
    sasl_mechanism: Annotated[SaslMechanism | None, BeforeValidator(upper)] = Field(
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

    @model_validator(mode="after")
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
            if credentials and not is_set(self, field):
                problems.append((field, f"required with sasl_mechanism {mechanism}"))
            if not credentials and is_set(self, field):
                problems.append((field, f"has no effect with sasl_mechanism {mechanism}"))
        if mechanism == "OAUTHBEARER" and self.oauthbearer is None:
            problems.append(("oauthbearer", "required with sasl_mechanism OAUTHBEARER"))
        if mechanism != "OAUTHBEARER" and self.oauthbearer is not None:
            problems.append(("oauthbearer", f"has no effect with sasl_mechanism {mechanism}"))
        for field in ("kerberos_principal", "kerberos_keytab"):
            if mechanism != "GSSAPI" and is_set(self, field):
                problems.append((field, f"has no effect with sasl_mechanism {mechanism}"))
        if self.kerberos_keytab is not None and not self.kerberos_principal:
            problems.append(("kerberos_principal", "required with kerberos_keytab"))
        if not self.protocol.endswith("SSL"):
            problems += [
                (field, f"has no effect with protocol {self.protocol}")
                for field in type(self).model_fields
                if field.startswith("ssl_") and field != "ssl_verify_hostname"
                if is_set(self, field)
            ]
        report_problems(problems)
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


class KafkaConnection(FrozenModel):
    """Where a Kafka cluster is and how to log in; enough for any client of it."""

    bootstrap_servers: Annotated[str, BeforeValidator(_bootstrap_servers)] = Field(
        description="Comma-separated host:port list (bootstrap.servers)"
    )
    security: KafkaSecurity = Field(KafkaSecurity(), description="TLS and SASL")
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

    auto_offset_reset: Annotated[Literal["earliest", "latest"], BeforeValidator(lower)] = Field(
        "earliest",
        description="Where to start a partition with no committed offset "
        "(consumer.override.auto.offset.reset; Kafka Connect's default is earliest)",
    )
    max_poll_interval_ms: int = Field(
        300_000, ge=1, description="consumer.override.max.poll.interval.ms"
    )

    @model_validator(mode="after")
    def _poll_interval_covers_session(self) -> KafkaSettings:
        # librdkafka refuses to create a consumer otherwise; say so before any run starts.
        session = self.librdkafka.get("session.timeout.ms", str(_LIBRDKAFKA_SESSION_TIMEOUT_MS))
        if session.isdigit() and self.max_poll_interval_ms < int(session):
            report_problems(
                [("max_poll_interval_ms", f"must be at least session.timeout.ms ({session})")]
            )
        return self
