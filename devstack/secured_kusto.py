"""The Kusto emulator as a cluster that demands Azure AD tokens, over https, with the local
token endpoint beside it: the two servers, and what a client needs to know about them."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

from devstack.identity import unsigned_token
from devstack.process import HealthCheck, Server
from devstack.stack import python_server

AUDIENCE = "https://kusto.kusto.windows.net"
"""What the Kusto SDK asks tokens for when a cluster has no cloud metadata (the emulator)."""


@dataclass(frozen=True)
class SecuredKusto:
    url: str
    authority_host: str
    """For Azure AD client credentials (azure-identity ``authority``)."""
    identity_endpoint: str
    """For managed identity (``IDENTITY_ENDPOINT``, with ``IDENTITY_HEADER``)."""
    identity_header: str
    ca_pem: Path
    """The CA of the servers' certificate: clients set ``REQUESTS_CA_BUNDLE`` to it."""
    log_files: tuple[Path, ...]
    audience: str = AUDIENCE

    def admin_client(self) -> KustoClient:
        """A Kusto SDK client with a token for this cluster, for setting up databases and
        tables and reading them back (with ``REQUESTS_CA_BUNDLE`` set to :attr:`ca_pem`)."""
        token = unsigned_token(self.audience, "devstack-admin")
        return KustoClient(
            KustoConnectionStringBuilder.with_aad_application_token_authentication(self.url, token)
        )


def https_health(url: str, ca: Path) -> HealthCheck:
    def check() -> None:
        httpx.get(url, verify=str(ca), timeout=3.0).raise_for_status()

    return check


def secured_kusto_servers(
    home: Path,
    storage_connection_string: str,
    kusto_port: int,
    identity_port: int,
    identity_header: str,
    certificate: Path,
    key: Path,
    ca: Path,
) -> tuple[SecuredKusto, list[Server]]:
    """The token endpoint and the token-demanding emulator (start them in this order)."""
    tls = ["--tls-cert", str(certificate), "--tls-key", str(key)]
    identity = Server(
        name="identity",
        command=[sys.executable, "-m", "devstack.identity", "--port", str(identity_port)]
        + ["--identity-header", identity_header, *tls],
        ports={"http": identity_port},
        health=https_health(f"https://127.0.0.1:{identity_port}/identity/health", ca),
        log_file=home / "identity.log",
        data_dir=home / "identity",
    )
    emulator = dataclasses.replace(
        python_server(
            "kusto-secured",
            "devstack.kusto_emulator",
            home / "kusto",
            ["--storage-connection-string", storage_connection_string]
            # Its own queues: the stack's emulator shares the storage account.
            + ["--storage-prefix", f"secured{kusto_port}-"]
            + ["--require-token", AUDIENCE, *tls],
            kusto_port,
            "/emulator/health",
            home / "kusto.log",
        ),
        health=https_health(f"https://127.0.0.1:{kusto_port}/emulator/health", ca),
    )
    described = SecuredKusto(
        url=f"https://127.0.0.1:{kusto_port}",
        authority_host=f"https://127.0.0.1:{identity_port}",
        identity_endpoint=f"https://127.0.0.1:{identity_port}/msi/token",
        identity_header=identity_header,
        ca_pem=ca,
        log_files=(identity.log_file, emulator.log_file),
    )
    return described, [identity, emulator]
