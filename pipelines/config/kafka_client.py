"""Our Kafka settings to librdkafka keys: the one place that knows librdkafka's names."""

from __future__ import annotations

from pipelines.config.kafka_settings import KafkaConnection, KafkaSecurity, KafkaSettings


def _sasl(security: KafkaSecurity) -> dict[str, str]:
    mechanism = security.sasl_mechanism
    if mechanism is None:
        return {}
    config: dict[str, str] = {"sasl.mechanism": mechanism}
    if security.sasl_username is not None and security.sasl_password is not None:
        config["sasl.username"] = security.sasl_username
        config["sasl.password"] = security.sasl_password.get_secret_value()
    if mechanism == "GSSAPI":
        config["sasl.kerberos.service.name"] = security.kerberos_service_name
        if security.kerberos_principal:
            config["sasl.kerberos.principal"] = security.kerberos_principal
        if security.kerberos_keytab:
            config["sasl.kerberos.keytab"] = str(security.kerberos_keytab)
    oauth = security.oauthbearer
    if mechanism == "OAUTHBEARER" and oauth is not None:
        if oauth.token_endpoint_url:
            config["sasl.oauthbearer.method"] = "oidc"
            config["sasl.oauthbearer.token.endpoint.url"] = oauth.token_endpoint_url
            config["sasl.oauthbearer.client.id"] = oauth.client_id or ""
            if oauth.client_secret is not None:
                config["sasl.oauthbearer.client.secret"] = oauth.client_secret.get_secret_value()
            if oauth.scope:
                config["sasl.oauthbearer.scope"] = oauth.scope
            if oauth.extensions:
                config["sasl.oauthbearer.extensions"] = ",".join(
                    f"{key}={value}" for key, value in oauth.extensions.items()
                )
        else:
            # librdkafka's built-in unsecured JWT: what Kafka's test setups accept.
            config["enable.sasl.oauthbearer.unsecure.jwt"] = "true"
            parts = [f"principal={oauth.principal}"]
            parts += [f"extension_{key}={value}" for key, value in oauth.extensions.items()]
            config["sasl.oauthbearer.config"] = " ".join(parts)
    return config


def _ssl(security: KafkaSecurity) -> dict[str, str]:
    if not security.protocol.endswith("SSL"):
        return {}
    config = {
        "ssl.endpoint.identification.algorithm": "https" if security.ssl_verify_hostname else "none"
    }
    paths = {
        "ssl.ca.location": security.ssl_ca_location,
        "ssl.certificate.location": security.ssl_certificate_location,
        "ssl.key.location": security.ssl_key_location,
        "ssl.keystore.location": security.ssl_keystore_location,
    }
    config |= {key: str(path) for key, path in paths.items() if path is not None}
    if security.ssl_ca_pem:
        config["ssl.ca.pem"] = security.ssl_ca_pem
    if security.ssl_certificate_pem:
        config["ssl.certificate.pem"] = security.ssl_certificate_pem
    secrets = {
        "ssl.key.pem": security.ssl_key_pem,
        "ssl.key.password": security.ssl_key_password,
        "ssl.keystore.password": security.ssl_keystore_password,
    }
    config |= {key: value.get_secret_value() for key, value in secrets.items() if value}
    return config


def kafka_client_config(conn: KafkaConnection, *, consumer: bool = False) -> dict[str, str]:
    """librdkafka configuration for a client of ``conn``'s cluster.

    Used for the consumer, admin clients and dead-letter producers alike. With
    ``consumer=True`` and the source cluster's :class:`KafkaSettings`, the consumer's own
    keys are added. ``conn.librdkafka`` overrides come last.
    """
    config = {
        "bootstrap.servers": conn.bootstrap_servers,
        "security.protocol": conn.security.protocol,
    }
    config |= _sasl(conn.security)
    config |= _ssl(conn.security)
    if consumer and isinstance(conn, KafkaSettings):
        config["auto.offset.reset"] = conn.auto_offset_reset
        config["max.poll.interval.ms"] = str(conn.max_poll_interval_ms)
        # Offsets are committed only by the commit step, after Kusto confirmed the batches.
        config["enable.auto.commit"] = "false"
        config["enable.auto.offset.store"] = "false"
    config |= conn.librdkafka
    return config
