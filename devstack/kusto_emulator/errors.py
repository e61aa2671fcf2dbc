"""Errors the emulator answers with, in Kusto's OneApi error shape.

The SDK turns the body into `KustoApiError` (status 4xx/5xx) or `KustoThrottlingError` (429);
`@permanent` decides whether the managed streaming client falls back to queued ingestion.
"""

from __future__ import annotations

from typing import Any

_REQUEST_INVALID = "Request is invalid and cannot be executed."


class KustoRequestError(Exception):
    """A request the emulator refuses, as a real cluster would."""

    def __init__(
        self, status: int, code: str, message: str, error_type: str, permanent: bool
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error_type = error_type
        self.permanent = permanent

    def body(self) -> dict[str, Any]:
        summary = _REQUEST_INVALID if self.status < 500 else self.message
        return {
            "error": {
                "code": self.code,
                "message": summary,
                "@type": self.error_type,
                "@message": self.message,
                "@context": {"service": "kusto-emulator"},
                "@permanent": self.permanent,
            }
        }

    @classmethod
    def bad_request(cls, message: str) -> KustoRequestError:
        return cls(
            400, "General_BadRequest", message, "Kusto.Data.Exceptions.BadRequestException", True
        )

    @classmethod
    def syntax(cls, message: str) -> KustoRequestError:
        return cls(
            400, "BadRequest_SyntaxError", message, "Kusto.Data.Exceptions.SyntaxException", True
        )

    @classmethod
    def entity_not_found(cls, kind: str, name: str) -> KustoRequestError:
        return cls(
            400,
            "BadRequest_EntityNotFound",
            f"{kind} '{name}' was not found.",
            "Kusto.Data.Exceptions.EntityNotFoundException",
            True,
        )

    @classmethod
    def streaming_disabled(cls, database: str, table: str) -> KustoRequestError:
        return cls(
            400,
            "BadRequest_StreamingIngestionPolicyNotEnabled",
            f"Streaming ingestion policy is not enabled for table '{database}.{table}'.",
            "Kusto.DataNode.Exceptions.StreamingIngestionPolicyNotEnabledException",
            True,
        )

    @classmethod
    def throttled(cls) -> KustoRequestError:
        return cls(
            429,
            "TooManyRequests",
            "The request was throttled (emulator fault injection).",
            "Kusto.DataNode.Exceptions.ThrottledException",
            False,
        )

    @classmethod
    def server_error(cls, status: int) -> KustoRequestError:
        code = "ServiceUnavailable" if status == 503 else "InternalServiceError"
        return cls(
            status,
            code,
            f"The service answered {status} (emulator fault injection).",
            "Kusto.Common.Svc.Exceptions.ServiceUnavailableException"
            if status == 503
            else "Kusto.Data.Exceptions.KustoServiceException",
            False,
        )
