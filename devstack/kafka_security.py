"""A secured side broker for the security tests: TLS certificates, SASL users, listeners.

The default devstack broker stays PLAINTEXT on one port. This one is separate and opt-in, on
its own ports and data dir, with one listener per security protocol:

- ``internal`` PLAINTEXT: the test's own admin and producers, and the health probe;
- ``ssl``: TLS with client certificates required (mutual TLS);
- ``sasl_plaintext`` and ``sasl_ssl``: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER
  (Kafka's unsecured JWT validator, which only test clusters use).

Certificates are made with openssl under the broker's home when it is first prepared: a CA,
the broker's certificate (SANs 127.0.0.1 and localhost) in a PKCS#12 keystore, and a client
certificate as PEM files and as a PKCS#12 keystore, as a Kafka Connect user would hold it.
SCRAM users are added when the storage is formatted (``--add-scram``); PLAIN users live in
the listener's JAAS configuration.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack import kafka
from devstack.process import Server, StackError

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SASL_USER = "sink"
OAUTH_PRINCIPAL = "sink"


@dataclass(frozen=True)
class SecurePorts:
    internal: int
    ssl: int
    sasl_plaintext: int
    sasl_ssl: int
    controller: int


@dataclass(frozen=True)
class SecureKafka:
    """Where the secured broker listens and what a client needs to log in."""

    home: Path
    ports: SecurePorts
    password: str
    """The SASL password of SASL_USER, and of the client keystore; made once per home."""

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_pem(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def client_certificate(self) -> Path:
        return self.tls_dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.tls_dir / "client.key"

    @property
    def client_keystore(self) -> Path:
        """PKCS#12 of the client certificate and key, protected by `password`."""
        return self.tls_dir / "client.p12"

    @property
    def server_certificate(self) -> Path:
        """The broker's certificate (127.0.0.1, localhost); other local https servers of the
        security tests (Kusto emulator, token endpoint) serve it too."""
        return self.tls_dir / "broker.pem"

    @property
    def server_key(self) -> Path:
        return self.tls_dir / "broker.key"

    @property
    def foreign_ca_pem(self) -> Path:
        """A CA that signed nothing the broker uses: trusting only it must fail."""
        return self.tls_dir / "foreign-ca.pem"

    def bootstrap(self, listener: str) -> str:
        """``127.0.0.1:<port>`` of a listener: internal, ssl, sasl_plaintext or sasl_ssl."""
        return f"127.0.0.1:{getattr(self.ports, listener)}"


def load_or_create(home: Path, ports: SecurePorts) -> SecureKafka:
    """The broker's description; its password is made once and kept in `home`."""
    home.mkdir(parents=True, exist_ok=True)
    secret_file = home / "credentials.json"
    if secret_file.exists():
        password = json.loads(secret_file.read_text())["password"]
    else:
        password = secrets.token_urlsafe(18)
        secret_file.write_text(json.dumps({"password": password}))
        secret_file.chmod(0o600)
    return SecureKafka(home, ports, password)


def _openssl(*arguments: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *arguments], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(
            f"kafka-secure: openssl {arguments[0]} failed (exit {result.returncode}): "
            f"{result.stderr[-2000:]}"
        )


def _self_signed_ca(tls: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=tls,
    )  # fmt: skip


def _signed_certificate(tls: Path, name: str, extensions: str) -> None:
    (tls / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr",
        cwd=tls,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=tls,
    )  # fmt: skip


def _pkcs12(tls: Path, name: str, password: str) -> None:
    _openssl(
        "pkcs12", "-export", "-in", f"{name}.pem", "-inkey", f"{name}.key",
        "-name", name, "-out", f"{name}.p12", "-passout", f"pass:{password}",
        cwd=tls,
    )  # fmt: skip


def make_certificates(broker: SecureKafka) -> None:
    """CA, broker and client certificates under ``broker.tls_dir``, unless already there."""
    tls = broker.tls_dir
    if (tls / "client.p12").exists():
        return
    tls.mkdir(parents=True, exist_ok=True)
    _self_signed_ca(tls, "ca")
    _self_signed_ca(tls, "foreign-ca")
    _signed_certificate(
        tls, "broker", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    _signed_certificate(tls, "client", "extendedKeyUsage=clientAuth\n")
    _pkcs12(tls, "broker", broker.password)
    _pkcs12(tls, "client", broker.password)
    for key in tls.glob("*.key"):
        key.chmod(0o600)


def _jaas(mechanism: str, password: str) -> str:
    if mechanism == "PLAIN":
        return (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="broker" password="{password}" user_broker="{password}" '
            f'user_{SASL_USER}="{password}";'
        )
    if mechanism == "OAUTHBEARER":
        # No callback handler configured: Kafka validates unsecured JWTs (tests only).
        return (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredLoginStringClaim_sub="broker";'
        )
    return "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def _listener_properties(broker: SecureKafka) -> str:
    tls = broker.tls_dir
    endpoints = ",".join(
        f"{listener.upper()}://127.0.0.1:{port}"
        for listener, port in dataclasses.asdict(broker.ports).items()
    )
    lines = [
        f"listeners={endpoints}",
        f"advertised.listeners={endpoints}",
        "inter.broker.listener.name=INTERNAL",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SSL:SSL,"
        "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        f"sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={tls / 'broker.p12'}",
        f"ssl.keystore.password={broker.password}",
        f"ssl.key.password={broker.password}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
    ]
    for listener in ("sasl_plaintext", "sasl_ssl"):
        for mechanism in SASL_MECHANISMS:
            jaas = _jaas(mechanism, broker.password)
            lines.append(f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config={jaas}")
    return "\n".join(lines) + "\n"


def secure_kafka_server(broker: SecureKafka, lib_dir: Path, log_file: Path) -> Server:
    """The secured broker as a stack server (health: a round trip on the internal listener)."""
    scram = [
        option
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for option in ("--add-scram", f"{mechanism}=[name={SASL_USER},password={broker.password}]")
    ]
    server = kafka.kafka_server(
        broker.home,
        lib_dir,
        log_file,
        broker.ports.internal,
        broker.ports.controller,
        name="kafka-secure",
        extra_properties=_listener_properties(broker),
        extra_ports={
            "ssl": broker.ports.ssl,
            "sasl_plaintext": broker.ports.sasl_plaintext,
            "sasl_ssl": broker.ports.sasl_ssl,
        },
        format_options=scram,
    )
    prepare = server.prepare
    assert prepare is not None

    def prepare_with_certificates() -> None:
        make_certificates(broker)
        prepare()

    return dataclasses.replace(server, prepare=prepare_with_certificates)
