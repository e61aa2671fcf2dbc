"""Fault injection, set by tests through `POST /emulator/faults`.

Fault kinds (JSON body fields; `database` / `table` narrow a fault, absent means any; mgmt
and query requests name only a database, so a fault with a `table` never matches them):

- `{"kind": "http", "endpoint": "mgmt|query|ingest|any", "status": 429|500|503|"hang",
  "count": N, "hang_seconds": S}`: the next N matching requests answer that status, or
  ("hang") hold the connection S seconds (default 60) and then answer 503. With
  `"for_seconds": T` instead, every matching request answers so for T seconds from when
  the fault was posted (a throttling spell), whatever `count` says.
- `{"kind": "ingestion", "failure": "transient|permanent", "count": K, "error_code": C}`:
  the next K queued ingestions fail with a failure status message (FailureStatus
  Transient / Permanent, ErrorCode C or a default code).
- `{"kind": "delay", "seconds": S}`: queued ingestions wait S seconds before ingesting
  (hidden in the queue meanwhile, so other tables' ingestions go on).
- `{"kind": "refuse_writes"}`: ingestion into the table fails permanently (streaming and
  `.ingest` commands: HTTP 400, queued: failure status), until the faults are cleared.

`DELETE /emulator/faults` clears them all (`?database=D`: only those set for D);
`GET /emulator/faults` lists the active ones.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

Endpoint = Literal["mgmt", "query", "ingest", "any"]

_DEFAULT_ERROR_CODES = {
    "transient": "General_RetryAttemptsExceeded",
    "permanent": "BadRequest_InvalidBlob",
}


class FaultSpec(BaseModel):
    """One fault as posted to `/emulator/faults`."""

    kind: Literal["http", "ingestion", "delay", "refuse_writes"]
    database: str | None = None
    table: str | None = None
    endpoint: Endpoint = "any"
    status: int | Literal["hang"] | None = None
    count: int = Field(default=1, ge=1)
    hang_seconds: float = Field(default=60.0, ge=0)
    for_seconds: float | None = Field(default=None, gt=0)
    failure: Literal["transient", "permanent"] = "transient"
    error_code: str | None = None
    seconds: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _check_http_status(self) -> FaultSpec:
        if self.kind == "http" and self.status not in (429, 500, 503, "hang"):
            raise ValueError("http faults need status 429, 500, 503 or 'hang'")
        return self


@dataclass
class HttpFault:
    status: int | Literal["hang"]
    hang_seconds: float


@dataclass
class IngestionFault:
    permanent: bool
    error_code: str


@dataclass
class _Active:
    spec: FaultSpec
    remaining: int
    expires_at: float | None = None

    def matches(self, database: str | None, table: str | None) -> bool:
        return (self.spec.database is None or self.spec.database == database) and (
            self.spec.table is None or self.spec.table == table
        )


class FaultRegistry:
    """Thread-safe: HTTP handlers and the queue worker consume faults concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Active] = []

    def add(self, spec: FaultSpec) -> None:
        with self._lock:
            expires_at = time.monotonic() + spec.for_seconds if spec.for_seconds else None
            self._faults.append(_Active(spec, spec.count, expires_at))

    def clear(self, database: str | None = None) -> None:
        """Remove every fault, or only those set for `database`."""
        with self._lock:
            self._faults = [
                active
                for active in self._faults
                if database is not None and active.spec.database != database
            ]

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**active.spec.model_dump(), "remaining": active.remaining}
                for active in self._faults
            ]

    def _take(
        self, kind: str, database: str | None, table: str | None, **match: Any
    ) -> _Active | None:
        """The first matching fault of a kind; counted faults are used up one by one."""
        with self._lock:
            for active in list(self._faults):  # a copy: expired faults are removed on the way
                spec = active.spec
                if spec.kind != kind or not active.matches(database, table):
                    continue
                if any(getattr(spec, key) not in values for key, values in match.items()):
                    continue
                if active.expires_at is not None:
                    if time.monotonic() < active.expires_at:
                        return active
                    self._faults.remove(active)
                    continue
                if kind in ("http", "ingestion"):
                    active.remaining -= 1
                    if active.remaining <= 0:
                        self._faults.remove(active)
                return active
        return None

    def http_fault(
        self, endpoint: Endpoint, database: str | None, table: str | None
    ) -> HttpFault | None:
        active = self._take("http", database, table, endpoint=(endpoint, "any"))
        if active is None:
            return None
        assert active.spec.status is not None
        return HttpFault(active.spec.status, active.spec.hang_seconds)

    def ingestion_fault(self, database: str, table: str) -> IngestionFault | None:
        active = self._take("ingestion", database, table)
        if active is None:
            return None
        failure = active.spec.failure
        return IngestionFault(
            permanent=failure == "permanent",
            error_code=active.spec.error_code or _DEFAULT_ERROR_CODES[failure],
        )

    def ingestion_delay(self, database: str, table: str) -> float:
        active = self._take("delay", database, table)
        return 0.0 if active is None else active.spec.seconds

    def refuses_writes(self, database: str, table: str) -> bool:
        return self._take("refuse_writes", database, table) is not None
