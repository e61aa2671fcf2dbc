"""Writer schemas by id: the Confluent wire format and a small lookup protocol.

Decoders ask a :class:`SchemaLookup` for the schema a record names. In production that is
:class:`RegistryLookup` over confluent-kafka's ``SchemaRegistryClient`` (which caches); unit
tests pass a plain mapping ``{id: (schema_type, schema_text)}`` instead.

Confluent wire format: magic byte ``0x00``, the schema id as 4 bytes big-endian, then the
body (Avro binary, JSON text, or Protobuf message indexes and message).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from pipelines.decode.base import SchemaRegistryUnavailable

WIRE_HEADER = struct.Struct(">bI")  # magic byte, schema id


@dataclass(frozen=True)
class SchemaReference:
    name: str
    subject: str
    version: int


@dataclass(frozen=True)
class WriterSchema:
    """A registered schema: ``schema_type`` is ``AVRO``, ``JSON`` or ``PROTOBUF``."""

    schema_type: str
    schema: str
    references: tuple[SchemaReference, ...] = ()


class UnknownSchema(LookupError):
    """The registry has no schema under this id (or subject version)."""


class SchemaLookup(Protocol):
    #: where schemas come from, for error messages (no credentials)
    source: str

    def schema_by_id(self, schema_id: int, *, serialized: bool = False) -> WriterSchema:
        """The schema registered as ``schema_id``; raises :class:`UnknownSchema`.

        ``serialized`` asks for Protobuf schemas as a base64 ``FileDescriptorProto`` instead
        of ``.proto`` text (the registry's ``format=serialized``).
        """
        ...

    def schema_by_version(
        self, subject: str, version: int, *, serialized: bool = False
    ) -> WriterSchema:
        """A referenced schema; raises :class:`UnknownSchema`."""
        ...


class RegistryLookup:
    """:class:`SchemaLookup` over a confluent-kafka ``SchemaRegistryClient``."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client
        url = str(client.config().get("url", "?"))  # type: ignore[no-untyped-call]
        self.source = f"registry {_without_credentials(url)}"

    def schema_by_id(self, schema_id: int, *, serialized: bool = False) -> WriterSchema:
        fmt = "serialized" if serialized else None
        with self._translated(f"schema id {schema_id}"):
            schema = self._client.get_schema(schema_id, fmt=fmt)
        return _writer_schema(schema.schema_type, schema.schema_str, schema.references)

    def schema_by_version(
        self, subject: str, version: int, *, serialized: bool = False
    ) -> WriterSchema:
        fmt = "serialized" if serialized else None
        with self._translated(f"subject {subject!r} version {version}"):
            registered = self._client.get_version(subject, version, fmt=fmt)
        schema = registered.schema
        return _writer_schema(schema.schema_type, schema.schema_str, schema.references)

    def _translated(self, what: str) -> AbstractContextManager[None]:
        return _translated_errors(what, self.source)


@contextmanager
def _translated_errors(what: str, source: str) -> Iterator[None]:
    """Client errors as ours: 404 → :class:`UnknownSchema`, anything else → transient."""
    try:
        yield
    except SchemaRegistryError as error:
        if error.http_status_code == 404:
            raise UnknownSchema(f"unknown {what} ({source})") from error
        if error.http_status_code == 422:  # the registry cannot serve this schema as asked
            raise ValueError(f"{source}: {error.error_message}") from error
        raise SchemaRegistryUnavailable(f"{source} could not resolve {what}: {error}") from error
    except Exception as error:  # transport errors of whichever HTTP library the client uses
        raise SchemaRegistryUnavailable(
            f"{source} could not resolve {what}: {type(error).__name__}: {error}"
        ) from error


class MappingLookup:
    """:class:`SchemaLookup` over ``{id: WriterSchema | (schema_type, schema_text)}``."""

    source = "in-memory schemas"

    def __init__(
        self,
        by_id: Mapping[int, WriterSchema | tuple[str, str]],
        by_version: Mapping[tuple[str, int], WriterSchema | tuple[str, str]] | None = None,
    ) -> None:
        self._by_id = {k: _as_writer_schema(v) for k, v in by_id.items()}
        self._by_version = {k: _as_writer_schema(v) for k, v in (by_version or {}).items()}

    def schema_by_id(self, schema_id: int, *, serialized: bool = False) -> WriterSchema:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchema(f"unknown schema id {schema_id} ({self.source})") from None

    def schema_by_version(
        self, subject: str, version: int, *, serialized: bool = False
    ) -> WriterSchema:
        try:
            return self._by_version[(subject, version)]
        except KeyError:
            raise UnknownSchema(
                f"unknown subject {subject!r} version {version} ({self.source})"
            ) from None


RegistryLike = SchemaRegistryClient | SchemaLookup | Mapping[int, WriterSchema | tuple[str, str]]


def as_lookup(registry: RegistryLike) -> SchemaLookup:
    if isinstance(registry, SchemaRegistryClient):
        return RegistryLookup(registry)
    if isinstance(registry, Mapping):
        return MappingLookup(registry)
    return registry


class BadWireFormat(ValueError):
    """A value that does not start with the Confluent wire header."""


def split_wire_format(value: bytes) -> tuple[int, int]:
    """``(schema_id, body_start)`` of a Confluent-framed value."""
    if len(value) < WIRE_HEADER.size:
        raise BadWireFormat(
            f"truncated Confluent header: {len(value)} bytes, need at least {WIRE_HEADER.size}"
        )
    magic, schema_id = WIRE_HEADER.unpack_from(value)
    if magic != 0:
        raise BadWireFormat(f"bad magic byte 0x{magic & 0xFF:02x}, expected 0x00")
    return schema_id, WIRE_HEADER.size


def shared_schema_id(values: list[bytes]) -> int | None:
    """The schema id every value's valid header names, or None if they differ or any is bad.

    Consecutive records nearly always share one schema; this finds out with C-speed
    builtins, leaving the per-record loop to runs that mix schemas or hold bad headers.
    """
    if not values or min(map(len, values)) < WIRE_HEADER.size:
        return None
    headers = {value[: WIRE_HEADER.size] for value in values}
    if len(headers) != 1:
        return None
    magic, schema_id = WIRE_HEADER.unpack(headers.pop())
    return schema_id if magic == 0 else None


T = TypeVar("T")


class SchemaCache(Generic[T]):
    """Prepared writer schemas by id; an id that cannot be used is remembered with its reason.

    ``prepare`` turns a :class:`WriterSchema` into what the decoder needs (an Avro framing, a
    validator, a message class) or raises ``ValueError`` saying why it cannot.
    """

    def __init__(
        self,
        lookup: SchemaLookup,
        schema_type: str,
        prepare: Callable[[WriterSchema], T],
        *,
        serialized: bool = False,
    ) -> None:
        self._lookup, self._schema_type, self._prepare = lookup, schema_type, prepare
        self._serialized = serialized
        self._ready: dict[int, T] = {}
        self._unusable: dict[int, str] = {}

    def get(self, schema_id: int) -> T | str:
        """The prepared schema, or the reason records with this id cannot be decoded."""
        if schema_id in self._ready:
            return self._ready[schema_id]
        if schema_id in self._unusable:
            return self._unusable[schema_id]
        try:
            writer = self._lookup.schema_by_id(schema_id, serialized=self._serialized)
            if writer.schema_type != self._schema_type:
                raise ValueError(
                    f"schema id {schema_id} is a {writer.schema_type} schema, "
                    f"expected {self._schema_type}"
                )
            prepared = self._prepare(writer)
        except UnknownSchema as unknown:
            self._unusable[schema_id] = str(unknown)
            return str(unknown)
        except ValueError as unusable:
            self._unusable[schema_id] = f"schema id {schema_id} unusable: {unusable}"
            return self._unusable[schema_id]
        self._ready[schema_id] = prepared
        return prepared


def _without_credentials(url: str) -> str:
    parts = urlsplit(url.split(",")[0])
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _as_writer_schema(value: WriterSchema | tuple[str, str]) -> WriterSchema:
    return value if isinstance(value, WriterSchema) else WriterSchema(*value)


def _writer_schema(schema_type: str | None, schema: str | None, refs: object) -> WriterSchema:
    references = tuple(
        SchemaReference(r.name, r.subject, r.version)
        for r in (refs or [])  # type: ignore[attr-defined]
    )
    return WriterSchema(schema_type or "AVRO", schema or "", references)
