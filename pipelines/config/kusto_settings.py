"""Settings of the Kusto cluster: URLs checked against known hosts, Azure AD login."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, field_validator, model_validator

from pipelines.config.base import FrozenModel, is_set, lower, report_problems
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
        # Not echoed: a user part or query may hold a password or a SAS token.
        raise ValueError(f"https://{host}...: a Kusto URL has no user, password, query or fragment")
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


class AuthSettings(FrozenModel):
    """How the sink authenticates to Kusto (aad.auth.* in Kafka Connect)."""

    strategy: Annotated[AuthStrategy, BeforeValidator(lower)] = Field(
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

    @model_validator(mode="after")
    def _fields_of_strategy(self) -> AuthSettings:
        required, optional = _AUTH_FIELDS[self.strategy]
        problems = [
            (field, f"required with strategy {self.strategy}")
            for field in required
            if not is_set(self, field)
        ]
        problems += [
            (field, f"has no effect with strategy {self.strategy}")
            for field in type(self).model_fields
            if field != "strategy" and field not in required + optional and is_set(self, field)
        ]
        report_problems(problems)
        return self


class ProxySettings(FrozenModel):
    """An HTTP proxy for Kusto traffic (proxy.host, proxy.port)."""

    host: str = Field(min_length=1, description="proxy.host")
    port: int = Field(ge=1, le=65535, description="proxy.port")


class KustoSettings(FrozenModel):
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

    @model_validator(mode="before")
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

    @model_validator(mode="after")
    def _auth_fits_urls(self) -> KustoSettings:
        strategy = self.auth.strategy
        urls = dict.fromkeys((self.ingestion_url, self.query_url))
        if strategy == "none" and (remote := [u for u in urls if not is_loopback_url(u)]):
            report_problems(
                [("auth.strategy", f"none works only with a loopback emulator, not {remote[0]}")]
            )
        if strategy != "none" and (plain := [u for u in urls if urlsplit(u).scheme == "http"]):
            report_problems(
                [
                    (
                        "auth.strategy",
                        f"{strategy} would send Azure AD tokens over plain http to {plain[0]}; "
                        "use strategy none for the local emulator",
                    )
                ]
            )
        return self
