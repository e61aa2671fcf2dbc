"""A local token endpoint standing in for Azure AD and the managed-identity endpoint.

azure-identity lets some flows point at another host, and this server answers them:

- managed identity, App Service style: ``IDENTITY_ENDPOINT=http(s)://127.0.0.1:P/msi/token``
  and ``IDENTITY_HEADER=<secret>``; ``GET /msi/token?resource=R&api-version=2019-08-01``;
- Azure AD v2 client credentials (client secret, certificate or federated token assertion,
  which covers workload identity): ``authority_host=https://127.0.0.1:P`` with
  ``disable_instance_discovery``; MSAL first reads
  ``/{tenant}/v2.0/.well-known/openid-configuration``, then posts to
  ``/{tenant}/oauth2/v2.0/token``. MSAL insists on https, so serve it with TLS.

Tokens are unsigned JWTs (``alg: none``) whose ``aud`` is the requested resource: the
Kusto emulator's ``--require-token`` checks audience and expiry, not signatures. Every grant
is recorded without its secret at ``GET /identity/grants`` so tests can tell which flow ran:
for a client assertion, the issuer of the presented JWT tells a certificate's assertion (the
client id, signed by MSAL) from a federated token (its identity provider, e.g. Kubernetes).
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.kusto_emulator.auth import token_claims

TOKEN_LIFETIME_S = 3600


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(
    audience: str,
    subject: str,
    lifetime: int = TOKEN_LIFETIME_S,
    issuer: str = "https://devstack-identity.local/",
) -> str:
    """An unsigned JWT for ``audience`` (scope ``X/.default`` or resource ``X`` both give X)."""
    now = int(time.time())
    claims = {
        "aud": audience.removesuffix("/.default"),
        "sub": subject,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


class IdentityEndpoint:
    """The token endpoint's state: the managed-identity header secret and the grants made."""

    def __init__(self, identity_header: str) -> None:
        self.identity_header = identity_header
        self.grants: list[dict[str, str]] = []

    async def managed_identity(self, request: Request) -> Response:
        if request.headers.get("x-identity-header") != self.identity_header:
            return JSONResponse({"error": "invalid X-IDENTITY-HEADER"}, status_code=401)
        resource = request.query_params.get("resource", "")
        client_id = request.query_params.get("client_id", "system-assigned")
        self.grants.append({"flow": "managed_identity", "client_id": client_id, "aud": resource})
        token = unsigned_token(resource, client_id)
        expires_on = int(time.time()) + TOKEN_LIFETIME_S
        return JSONResponse(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id,
            }
        )

    async def openid_configuration(self, request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}/{request.path_params['tenant']}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
            }
        )

    async def token(self, request: Request) -> Response:
        # url-encoded, parsed here: starlette's form parser needs python-multipart.
        form = {
            key: values[-1] for key, values in parse_qs((await request.body()).decode()).items()
        }
        scope = form.get("scope", "").split()
        audience = next((s for s in scope if s.endswith("/.default")), "").removesuffix("/.default")
        grant = {"client_id": form.get("client_id", ""), "aud": audience}
        if "client_secret" in form:
            grant["flow"] = "client_secret"
        elif assertion := form.get("client_assertion"):
            # A certificate's or a federated (workload identity) token: its issuer says which.
            grant["flow"] = "client_assertion"
            try:
                grant["assertion_issuer"] = str(token_claims(assertion).get("iss", ""))
            except ValueError:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "assertion is not a JWT"},
                    status_code=401,
                )
        else:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "no client credential"},
                status_code=401,
            )
        self.grants.append(grant)
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_S,
                "ext_expires_in": TOKEN_LIFETIME_S,
                "access_token": unsigned_token(audience, grant["client_id"]),
            }
        )

    async def list_grants(self, _: Request) -> Response:
        return JSONResponse(self.grants)

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})


def build_app(endpoint: IdentityEndpoint) -> Starlette:
    return Starlette(
        routes=[
            Route("/identity/health", endpoint.health, methods=["GET"]),
            Route("/identity/grants", endpoint.list_grants, methods=["GET"]),
            Route("/msi/token", endpoint.managed_identity, methods=["GET"]),
            Route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                endpoint.openid_configuration,
                methods=["GET"],
            ),
            Route("/{tenant}/oauth2/v2.0/token", endpoint.token, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.identity")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--identity-header", required=True, help="IDENTITY_HEADER secret")
    parser.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(IdentityEndpoint(args.identity_header)),
        host=args.host,
        port=args.port,
        log_level="warning",
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )


if __name__ == "__main__":
    main()
