"""Opt-in bearer-token check: the emulator refuses Kusto requests without an Azure AD token.

With ``--require-token AUDIENCE`` every mgmt, query and streaming-ingest request must carry
``Authorization: Bearer <jwt>`` whose ``aud`` is AUDIENCE and whose ``exp`` lies ahead, as a
real cluster demands. Refusals are 401s in Kusto's error shape. The token's signature is not
checked: the local token endpoint (devstack/identity.py) stands in for Azure AD, and what the
tests prove is that the sink's credentials obtain a token for the right audience and send it.

Queued ingestion's blobs and queues go through Azure Storage with SAS, without a bearer
token, as on ADX; the emulator's own endpoints (/emulator/*) and the unauthenticated
``/v1/rest/auth/metadata`` lookup are not guarded either.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from devstack.kusto_emulator.errors import KustoRequestError

GUARDED_PREFIXES = ("/v1/rest/mgmt", "/v1/rest/query", "/v2/rest/query", "/v1/rest/ingest/")


def _unauthorized(message: str) -> KustoRequestError:
    return KustoRequestError(
        401, "Unauthorized", message, "Kusto.Common.Svc.Exceptions.UnauthorizedException", True
    )


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (``header.payload.signature``), without checking its signature.

    Raises:
        ValueError: when ``token`` is not a JWT with a JSON object as payload.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("the bearer token is not a JWT (header.payload.signature)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError as error:
        raise ValueError("the bearer token's payload is not base64url JSON") from error
    if not isinstance(claims, dict):
        raise ValueError("the bearer token's payload is not a JSON object")
    return claims


def check_authorization(header: str | None, audience: str) -> None:
    """Raise the 401 a cluster answers unless ``header`` carries a live token for ``audience``."""
    if not header or not header.startswith("Bearer "):
        raise _unauthorized("Authorization: Bearer <token> is required by this cluster")
    try:
        claims = token_claims(header.removeprefix("Bearer ").strip())
    except ValueError as error:
        raise _unauthorized(str(error)) from None
    audiences = claims.get("aud")
    accepted = audiences if isinstance(audiences, list) else [audiences]
    if audience.rstrip("/") not in {str(a).rstrip("/") for a in accepted}:
        raise _unauthorized(f"the token's audience {audiences!r} is not {audience!r}")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires <= time.time():
        raise _unauthorized("the token has expired or has no exp claim")


class RequireToken:
    """ASGI middleware: the token check in front of Kusto's REST endpoints."""

    def __init__(self, app: ASGIApp, audience: str) -> None:
        self.app = app
        self.audience = audience

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(GUARDED_PREFIXES):
            request = Request(scope)
            try:
                check_authorization(request.headers.get("authorization"), self.audience)
            except KustoRequestError as error:
                response = JSONResponse(error.body(), status_code=error.status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
