"""Fail fast on a Kafka login that cannot work: wrong password, untrusted or missing certificate.

librdkafka reports a refused login through its error callback within a second, while a
metadata request only gives up after its timeout with "broker transport failure". So the
check asks for the cluster's description and watches the error callback at the same time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

# What each refusal means for the user, by librdkafka error code.
_HINTS = {
    KafkaError._AUTHENTICATION: "check the SASL user and password (sasl.jaas.config) "
    "and sasl.mechanism",
    KafkaError._SSL: "check the trusted CA certificates (ssl.truststore.* / ssl_ca_location) "
    "and the broker's host name",
}
_CLIENT_CERTIFICATE_REFUSED = "bad certificate"


def login_problem(config: Mapping[str, str], timeout: float) -> str | None:
    """Why a client with librdkafka ``config`` cannot log in to its cluster, or None.

    Returns within ``timeout`` seconds, and within about a second when the cluster refuses
    the credentials or the certificates. The message names the servers, never a secret.
    """
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append})
    servers = config["bootstrap.servers"]
    described = admin.describe_cluster(request_timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not described.done():
        admin.poll(0.1)
        for error in errors:
            reason = _refusal(error)
            if reason is not None:
                return f"Kafka at {servers} refused the login: {reason}"
        if any(error.code() == KafkaError._ALL_BROKERS_DOWN for error in errors):
            last = [error.str() for error in errors if error.code() == KafkaError._TRANSPORT]
            detail = f": {last[-1]}" if last else ""
            return f"Kafka at {servers} cannot be reached{detail}"
    if not described.done():
        return f"Kafka at {servers} did not answer within {timeout:.0f}s"
    return None


def _refusal(error: KafkaError) -> str | None:
    hint = _HINTS.get(error.code())
    if hint is not None:
        return f"{error.str()} ({hint})"
    if error.code() == KafkaError._TRANSPORT and _CLIENT_CERTIFICATE_REFUSED in error.str():
        return (
            f"{error.str()} (the broker requires a client certificate it trusts: check "
            "ssl.keystore.* / ssl_certificate_location and ssl_key_location)"
        )
    return None
