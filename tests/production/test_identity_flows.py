"""Every Azure AD strategy of the sink obtains a token from the local token endpoint
(devstack/identity.py), and the token-demanding emulator accepts it through the unmodified
Kusto SDK: a query and a management command per strategy.

Each strategy goes through the sink's own path (``auth`` settings ->
pipelines.credentials -> azure-identity credential -> Kusto SDK), and the token endpoint's
record of grants says which flow ran (a certificate's assertion and a federated token are
both client assertions; their issuers tell them apart).
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import httpx
import pytest
from azure.identity import AzureCliCredential, CredentialUnavailableError
from azure.kusto.data import KustoClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devstack.identity import unsigned_token
from devstack.secured_kusto import SecuredKusto
from pipelines.config.kusto_settings import AuthSettings
from pipelines.credentials import connection_string, credential

pytestmark = pytest.mark.stack

TENANT = "contoso-tenant"
KUBERNETES_ISSUER = "https://oidc.aks.local/issuer"


@pytest.fixture
def trusted_tls(secured_kusto: SecuredKusto, monkeypatch: pytest.MonkeyPatch) -> SecuredKusto:
    """Python's TLS clients (azure-identity, MSAL, the Kusto SDK) trust the test CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(secured_kusto.ca_pem))
    return secured_kusto


@pytest.fixture
def database(trusted_tls: SecuredKusto, unique_name: str) -> str:
    admin = trusted_tls.admin_client()
    admin.execute_mgmt(None, f".create database {unique_name} ifnotexists")
    admin.close()
    return unique_name


@pytest.fixture
def app_service_identity(trusted_tls: SecuredKusto, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment App Service gives a managed identity, pointing at the local endpoint."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", trusted_tls.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", trusted_tls.identity_header)


def grants(kusto: SecuredKusto) -> list[dict[str, str]]:
    answer = httpx.get(f"{kusto.authority_host}/identity/grants", verify=str(kusto.ca_pem))
    answer.raise_for_status()
    return answer.json()


def query_and_command(
    kusto: SecuredKusto, database: str, auth: AuthSettings
) -> list[dict[str, str]]:
    """Run a query and a management command as ``auth``; return the grants they caused."""
    before = len(grants(kusto))
    client = KustoClient(connection_string(kusto.url, auth))
    try:
        rows = client.execute_query(database, "print answer = 42").primary_results[0]
        assert rows[0]["answer"] == 42
        databases = client.execute_mgmt(database, ".show databases").primary_results[0]
        assert database in [row["DatabaseName"] for row in databases]
    finally:
        client.close()
    new = grants(kusto)[before:]
    assert all(grant["aud"] == kusto.audience for grant in new), new
    return new


def test_system_assigned_managed_identity(
    trusted_tls: SecuredKusto, database: str, app_service_identity
):
    new = query_and_command(trusted_tls, database, AuthSettings(strategy="managed_identity"))
    assert [(g["flow"], g["client_id"]) for g in new] == [("managed_identity", "system-assigned")]


def test_user_assigned_managed_identity(
    trusted_tls: SecuredKusto, database: str, app_service_identity
):
    auth = AuthSettings(strategy="managed_identity", client_id="orders-sink-identity")
    new = query_and_command(trusted_tls, database, auth)
    assert [(g["flow"], g["client_id"]) for g in new] == [
        ("managed_identity", "orders-sink-identity")
    ]


def test_application_with_a_client_secret(trusted_tls: SecuredKusto, database: str):
    auth = AuthSettings(
        strategy="application",
        tenant=TENANT,
        client_id="secret-app",
        client_secret="app-secret-1",
        authority_host=trusted_tls.authority_host,
    )
    new = query_and_command(trusted_tls, database, auth)
    assert [(g["flow"], g["client_id"]) for g in new] == [("client_secret", "secret-app")]


def test_application_with_a_client_certificate(
    trusted_tls: SecuredKusto, database: str, tmp_path: Path
):
    pem = tmp_path / "app.pem"
    pem.write_bytes(encrypted_certificate_pem("certificate-app", b"pem-passphrase"))
    auth = AuthSettings(
        strategy="application_certificate",
        tenant=TENANT,
        client_id="certificate-app",
        certificate_path=pem,
        certificate_password="pem-passphrase",
        authority_host=trusted_tls.authority_host,
    )
    new = query_and_command(trusted_tls, database, auth)
    # MSAL signs the assertion with the certificate's key; the app is its issuer.
    assert [(g["flow"], g["client_id"], g["assertion_issuer"]) for g in new] == [
        ("client_assertion", "certificate-app", "certificate-app")
    ]


def test_workload_identity_with_a_federated_token_file(
    trusted_tls: SecuredKusto, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # What the AKS workload identity webhook mounts into a pod.
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(
        unsigned_token(
            "api://AzureADTokenExchange",
            "system:serviceaccount:sink:kusto-sink",
            issuer=KUBERNETES_ISSUER,
        )
    )
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    auth = AuthSettings(
        strategy="workload_identity",
        tenant=TENANT,
        client_id="workload-app",
        authority_host=trusted_tls.authority_host,
    )
    new = query_and_command(trusted_tls, database, auth)
    assert [(g["flow"], g["client_id"], g["assertion_issuer"]) for g in new] == [
        ("client_assertion", "workload-app", KUBERNETES_ISSUER)
    ]


def test_default_credential_finds_the_managed_identity(
    trusted_tls: SecuredKusto, database: str, app_service_identity, monkeypatch: pytest.MonkeyPatch
):
    for variable in ("AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    new = query_and_command(trusted_tls, database, AuthSettings(strategy="default"))
    assert [g["flow"] for g in new] == ["managed_identity"]


def test_azure_cli_credential_is_built_for_the_tenant():
    """The Azure CLI cannot be pointed at a loopback identity provider (it logs in against
    Azure AD itself), so only the credential the sink builds is checked here, and that
    without a CLI on the machine it says so instead of hanging or falling back."""
    built = credential(AuthSettings(strategy="azure_cli", tenant=TENANT))
    assert isinstance(built, AzureCliCredential)
    assert built.tenant_id == TENANT
    if shutil.which("az") is None:
        with pytest.raises(CredentialUnavailableError, match="Azure CLI"):
            built.get_token("https://kusto.kusto.windows.net/.default")


def encrypted_certificate_pem(subject: str, passphrase: bytes) -> bytes:
    """A self-signed certificate and its passphrase-protected key in one PEM file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encrypted_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    return encrypted_key + certificate.public_bytes(serialization.Encoding.PEM)


def test_default_credential_finds_the_workload_identity(
    trusted_tls: SecuredKusto, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(
        unsigned_token("api://AzureADTokenExchange", "sa", issuer=KUBERNETES_ISSUER)
    )
    # What the AKS workload identity webhook sets, besides the client and tenant ids.
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", trusted_tls.authority_host)
    auth = AuthSettings(
        strategy="default",
        tenant=TENANT,
        client_id="default-workload-app",
        authority_host=trusted_tls.authority_host,
    )
    new = query_and_command(trusted_tls, database, auth)
    assert [(g["flow"], g["client_id"], g["assertion_issuer"]) for g in new] == [
        ("client_assertion", "default-workload-app", KUBERNETES_ISSUER)
    ]
