"""Kusto connection strings from the sink's auth settings, through azure-identity.

Every strategy but ``none`` and ``az_dev_token`` becomes an azure-identity credential
handed to the Kusto SDK, so token caching, refresh and sovereign-cloud authority hosts are
azure-identity's, not ours.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.identity import (
    AzureAuthorityHosts,
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.kusto.data import KustoConnectionStringBuilder

from pipelines.config import AuthSettings

_WELL_KNOWN_AUTHORITIES = {
    AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
    AzureAuthorityHosts.AZURE_CHINA,
    AzureAuthorityHosts.AZURE_GOVERNMENT,
}


def connection_string(url: str, auth: AuthSettings) -> KustoConnectionStringBuilder:
    """The Kusto SDK's connection to ``url`` authenticated as ``auth`` says."""
    if auth.strategy == "none":
        return KustoConnectionStringBuilder.with_no_authentication(url)
    if auth.strategy == "az_dev_token":
        assert auth.token is not None  # the settings model requires it
        return KustoConnectionStringBuilder.with_aad_application_token_authentication(
            url, auth.token.get_secret_value()
        )
    return KustoConnectionStringBuilder.with_azure_token_credential(url, credential(auth))


def credential(auth: AuthSettings) -> TokenCredential:
    """The azure-identity credential of a token-based strategy."""
    authority: dict[str, Any] = {"authority": auth.authority_host} if auth.authority_host else {}
    # MSAL checks authorities it does not know against Azure's public cloud, which fails for
    # Azure Stack, private clouds and local token endpoints: skip that check for them.
    host = (auth.authority_host or "").removeprefix("https://").rstrip("/")
    if host and host not in _WELL_KNOWN_AUTHORITIES:
        authority["disable_instance_discovery"] = True
    match auth.strategy:
        case "application":
            assert auth.tenant and auth.client_id and auth.client_secret
            return ClientSecretCredential(
                auth.tenant, auth.client_id, auth.client_secret.get_secret_value(), **authority
            )
        case "application_certificate":
            assert auth.tenant and auth.client_id and auth.certificate_path
            password = auth.certificate_password
            return CertificateCredential(
                auth.tenant,
                auth.client_id,
                str(auth.certificate_path),
                password=password.get_secret_value() if password else None,
                **authority,
            )
        case "managed_identity":
            return ManagedIdentityCredential(client_id=auth.client_id)
        case "workload_identity":
            return WorkloadIdentityCredential(
                tenant_id=auth.tenant, client_id=auth.client_id, **authority
            )
        case "azure_cli":
            return AzureCliCredential(tenant_id=auth.tenant or "")
        case "default":
            # Its workload identity takes the authority host from AZURE_AUTHORITY_HOST, as the
            # AKS webhook sets it, and the tenant only from here or AZURE_TENANT_ID.
            return DefaultAzureCredential(
                managed_identity_client_id=auth.client_id,
                workload_identity_client_id=auth.client_id,
                workload_identity_tenant_id=auth.tenant,
                **authority,
            )
    raise ValueError(f"auth.strategy {auth.strategy!r} does not use an Azure AD credential")
