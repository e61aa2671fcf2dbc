"""Kafka's Java client properties, as Kafka Connect writes them, to our connection fields.

``sasl.jaas.config`` is parsed for the credentials librdkafka takes as separate keys, and
Java keystores are mapped to the PEM / PKCS#12 files librdkafka can read. Values are
passed through unresolved so that ``${env:...}`` references survive into the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from pipelines.errors import Problem

_JAAS_ENTRY = re.compile(
    r"\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)\s*"
    r"(?P<options>.*?)\s*;?\s*$",
    re.DOTALL,
)
_JAAS_OPTION = re.compile(r'\s*([\w.\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]+)\s*')

# The login module's last name decides which options mean what.
_PASSWORD_MODULES = ("PlainLoginModule", "ScramLoginModule")
_OAUTH_MODULE = "OAuthBearerLoginModule"
_KERBEROS_MODULE = "Krb5LoginModule"
_KERBEROS_FLAGS = {"useKeyTab", "storeKey", "useTicketCache", "doNotPrompt", "debug", "serviceName"}

# JVM-only knobs: librdkafka (OpenSSL) chooses these itself.
_JVM_ONLY = {
    "ssl.protocol": "OpenSSL negotiates the TLS version",
    "ssl.enabled.protocols": "OpenSSL negotiates the TLS version",
    "ssl.cipher.suites": "Java cipher names do not apply to OpenSSL",
    "ssl.keymanager.algorithm": "a JVM setting",
    "ssl.trustmanager.algorithm": "a JVM setting",
    "ssl.secure.random.implementation": "a JVM setting",
    "ssl.provider": "a JVM setting",
    "ssl.engine.factory.class": "a JVM setting",
    "sasl.login.callback.handler.class": "implied by sasl.oauthbearer.token.endpoint.url",
}


@dataclass
class Translation:
    """What a group of properties became: our fields, what was left unused, what was wrong."""

    fields: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # our field path -> property
    unused: dict[str, str] = field(default_factory=dict)  # property -> why it is unused
    problems: list[Problem] = field(default_factory=list)


def parse_jaas(text: str) -> tuple[str, dict[str, str]]:
    """The login module and options of a ``sasl.jaas.config`` value.

    Raises:
        ValueError: if ``text`` is not ``<LoginModule> <flag> key=value ... ;``.
    """
    entry = _JAAS_ENTRY.fullmatch(text)
    if entry is None:
        raise ValueError("expected '<LoginModule> required key=\"value\" ...;'")
    options: dict[str, str] = {}
    rest = entry["options"]
    position = 0
    while position < len(rest):
        option = _JAAS_OPTION.match(rest, position)
        if option is None:
            # Name only the keys read so far: the rest may hold a password.
            after = f" after {', '.join(options)}" if options else ""
            raise ValueError(f'cannot read the options{after}: expected key=value or key="value"')
        key, value = option.groups()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        options[key] = value
        position = option.end()
    return entry["module"].rpartition(".")[2], options


def _jaas_fields(text: str, setting: str, result: Translation) -> None:
    try:
        module, options = parse_jaas(text)
    except ValueError as error:
        result.problems.append(Problem(setting, str(error)))
        return
    taken: dict[str, str] = {}
    if module in _PASSWORD_MODULES:
        taken = {"username": "sasl_username", "password": "sasl_password"}
    elif module == _OAUTH_MODULE:
        taken = {
            "clientId": "oauthbearer.client_id",
            "clientSecret": "oauthbearer.client_secret",
            "scope": "oauthbearer.scope",
            "unsecuredLoginStringClaim_sub": "oauthbearer.principal",
        }
        extensions = {
            key.removeprefix("extension_"): value
            for key, value in options.items()
            if key.startswith("extension_")
        }
        if extensions:
            result.fields.setdefault("oauthbearer", {})["extensions"] = extensions
    elif module == _KERBEROS_MODULE:
        taken = {"keyTab": "kerberos_keytab", "principal": "kerberos_principal"}
    else:
        result.problems.append(
            Problem(
                setting,
                f"login module {module} is not supported (use PlainLoginModule, "
                "ScramLoginModule, OAuthBearerLoginModule or Krb5LoginModule)",
            )
        )
        return
    for option, value in options.items():
        if option in taken:
            _put(result, taken[option], value, setting)
        elif not (option.startswith("extension_") and module == _OAUTH_MODULE):
            if module != _KERBEROS_MODULE or option not in _KERBEROS_FLAGS:
                result.unused[f"{setting} {option}"] = f"a {module} option librdkafka does not use"


def _put(result: Translation, path: str, value: Any, setting: str) -> None:
    target = result.fields
    *parents, last = path.split(".")
    for parent in parents:
        target = target.setdefault(parent, {})
    target[last] = value
    result.origins[path] = setting


def _store_type(location: str, declared: str | None) -> str:
    if declared:
        return declared.upper()
    suffix = PurePath(location).suffix.lower()
    if suffix in (".pem", ".crt", ".cer"):
        return "PEM"
    return "PKCS12" if suffix in (".p12", ".pfx") else "JKS"  # JKS: the JVM's default


def _stores(props: Mapping[str, str], prefix: str, result: Translation) -> None:
    trust = props.get("ssl.truststore.location")
    if trust is not None:
        kind = _store_type(trust, props.get("ssl.truststore.type"))
        if kind == "PEM":
            _put(result, "ssl_ca_location", trust, f"{prefix}ssl.truststore.location")
        else:
            result.problems.append(
                Problem(
                    f"{prefix}ssl.truststore.location",
                    f"librdkafka cannot read a {kind} truststore: export its CA certificates "
                    "as PEM (keytool -exportcert -rfc) and set ssl.truststore.type=PEM",
                )
            )
    keystore = props.get("ssl.keystore.location")
    if keystore is not None:
        kind = _store_type(keystore, props.get("ssl.keystore.type"))
        setting = f"{prefix}ssl.keystore.location"
        if kind == "PKCS12":
            _put(result, "ssl_keystore_location", keystore, setting)
        elif kind == "PEM":  # one PEM file holding certificate and key, as Kafka allows
            _put(result, "ssl_certificate_location", keystore, setting)
            _put(result, "ssl_key_location", keystore, setting)
        else:
            result.problems.append(
                Problem(
                    setting,
                    "librdkafka cannot read a JKS keystore: convert it to PKCS12 "
                    "(keytool -importkeystore -deststoretype PKCS12) and set "
                    "ssl.keystore.type=PKCS12",
                )
            )
        password = props.get("ssl.keystore.password")
        if password is not None:
            if kind == "PKCS12":
                _put(result, "ssl_keystore_password", password, f"{prefix}ssl.keystore.password")
            else:
                result.unused[f"{prefix}ssl.keystore.password"] = f"not used by a {kind} keystore"
    if "ssl.truststore.password" in props:
        result.unused[f"{prefix}ssl.truststore.password"] = "a PEM truststore has no password"


_SIMPLE = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security.protocol",
    "sasl.mechanism": "security.sasl_mechanism",
    "sasl.kerberos.service.name": "security.kerberos_service_name",
    "sasl.oauthbearer.token.endpoint.url": "security.oauthbearer.token_endpoint_url",
    "ssl.truststore.certificates": "security.ssl_ca_pem",
    "ssl.keystore.certificate.chain": "security.ssl_certificate_pem",
    "ssl.keystore.key": "security.ssl_key_pem",
    "ssl.key.password": "security.ssl_key_password",
}
_STORE_KEYS = {
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.password",
}


def connection_from_java(props: Mapping[str, str], prefix: str) -> tuple[Translation, set[str]]:
    """Our ``KafkaConnection`` fields from Java client properties (``prefix`` stripped).

    Returns the translation, whose origins name the full property (with ``prefix``), and
    the keys it handled; the caller decides about the others.
    """
    result = Translation()
    security = Translation()
    handled: set[str] = set()
    for key, value in props.items():
        setting = f"{prefix}{key}"
        if key in _SIMPLE:
            path = _SIMPLE[key]
            target = security if path.startswith("security.") else result
            _put(target, path.removeprefix("security."), value, setting)
        elif key == "ssl.endpoint.identification.algorithm":
            _put(security, "ssl_verify_hostname", str(value.strip().lower() == "https"), setting)
        elif key == "sasl.jaas.config":
            _jaas_fields(value, setting, security)
        elif key in _JVM_ONLY:
            result.unused[setting] = _JVM_ONLY[key]
        elif key not in _STORE_KEYS:
            continue
        handled.add(key)
    _stores(props, prefix, security)
    handled |= _STORE_KEYS & props.keys()
    if security.fields:
        result.fields["security"] = security.fields
    result.origins.update({f"security.{path}": name for path, name in security.origins.items()})
    result.unused.update(security.unused)
    result.problems += security.problems
    return result, handled
