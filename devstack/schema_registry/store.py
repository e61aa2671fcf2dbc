"""The registry's state: schemas by id, subject versions and compatibility, in one SQLite file.

SQLite, not a JSON file, so that a crash mid-write never loses ids already handed out: ids
end up inside Kafka records, and a registry that forgot one would make them undecodable.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.schema_registry import errors
from devstack.schema_registry.compatibility import avro_incompatibilities
from devstack.schema_registry.protobuf_text import serialized_protobuf
from devstack.schema_registry.schemas import canonical_schema, parse_avro

COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_COMPATIBILITY = "BACKWARD"
_GLOBAL = ""  # config row key of the global level; subjects are never empty

_TABLES = """
CREATE TABLE IF NOT EXISTS schemas (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    schema_type TEXT NOT NULL,
    schema TEXT NOT NULL,
    refs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema_id INTEGER NOT NULL REFERENCES schemas(id),
    deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (
    subject TEXT PRIMARY KEY,
    compatibility TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Reference:
    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class StoredSchema:
    id: int
    schema_type: str
    schema: str
    references: list[Reference] = field(default_factory=list)

    def to_json(self, schema_text: str | None = None) -> dict[str, Any]:
        """The API's view; ``schema_text`` replaces the stored text (another format of it)."""
        text = self.schema if schema_text is None else schema_text
        body: dict[str, Any] = {"schema": text, "schemaType": self.schema_type}
        if self.references:
            body["references"] = [ref.to_json() for ref in self.references]
        return body


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    schema: StoredSchema
    deleted: bool = False

    def to_json(self, schema_text: str | None = None) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.schema.id,
            **self.schema.to_json(schema_text),
        }


class SchemaStore:
    """All registry operations; each runs in one SQLite transaction under one lock."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "registry.sqlite3", check_same_thread=False)
        self._db.executescript(_TABLES)
        self._lock = threading.Lock()
        self._serialized: dict[int, str] = {}  # schema id -> compiled Protobuf descriptor

    def close(self) -> None:
        self._db.close()

    # -- schemas -------------------------------------------------------------------------

    def register(
        self, subject: str, schema_type: str, schema: str, references: list[Reference]
    ) -> SubjectVersion:
        """Add ``schema`` to ``subject`` (or return the live version that already has it)."""
        with self._lock, self._db:
            stored = self._find_or_prepare(schema_type, schema, references)
            live = self._versions(subject, include_deleted=False)
            for version in live:
                if version.schema.id == stored.id:
                    return version
            problems = self._incompatibilities(subject, stored, live)
            if problems:
                raise errors.incompatible_schema(subject, problems)
            if stored.id == 0:
                stored = self._insert_schema(stored)
            next_version = (
                1
                + self._db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM versions WHERE subject = ?", (subject,)
                ).fetchone()[0]
            )
            self._db.execute(
                "INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)",
                (subject, next_version, stored.id),
            )
            return SubjectVersion(subject, next_version, stored)

    def lookup(
        self,
        subject: str,
        schema_type: str,
        schema: str,
        references: list[Reference],
        include_deleted: bool = False,
    ) -> SubjectVersion:
        """The version of ``subject`` holding ``schema``: POST /subjects/{subject}."""
        with self._lock:
            versions = self._versions(subject, include_deleted)
            if not versions:
                raise errors.subject_not_found(subject)
            stored = self._find_or_prepare(schema_type, schema, references)
            for version in versions:
                if version.schema.id == stored.id:
                    return version
        raise errors.schema_not_found()

    def serialized_protobuf(self, schema: StoredSchema) -> str:
        """A Protobuf schema as a base64 ``FileDescriptorProto`` (``format=serialized``)."""
        with self._lock:
            return self._serialized_protobuf(schema)

    def schema_by_id(self, schema_id: int) -> StoredSchema:
        with self._lock:
            return self._schema(schema_id)

    def schema_versions(
        self, schema_id: int, include_deleted: bool = False
    ) -> list[tuple[str, int]]:
        with self._lock:
            self._schema(schema_id)
            rows = self._db.execute(
                "SELECT subject, version FROM versions WHERE schema_id = ? AND deleted <= ? "
                "ORDER BY subject, version",
                (schema_id, int(include_deleted)),
            ).fetchall()
        return [(subject, version) for subject, version in rows]

    def incompatibilities(
        self,
        subject: str,
        version: int | None,
        schema_type: str,
        schema: str,
        references: list[Reference],
    ) -> list[str]:
        """Why ``schema`` may not follow ``subject``'s version (latest if None); [] if it may."""
        with self._lock:
            candidate = self._find_or_prepare(schema_type, schema, references)
            against = self._version(subject, version, include_deleted=False)
            return self._incompatibilities(subject, candidate, [against])

    # -- subjects ------------------------------------------------------------------------

    def subjects(self, include_deleted: bool = False, prefix: str = "") -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT subject FROM versions WHERE deleted <= ? AND subject LIKE ? "
                "ESCAPE '\\' ORDER BY subject",
                (int(include_deleted), _like_prefix(prefix)),
            ).fetchall()
        return [subject for (subject,) in rows]

    def versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        with self._lock:
            found = self._versions(subject, include_deleted)
        if not found:
            raise errors.subject_not_found(subject)
        return found

    def version(
        self, subject: str, version: int | None, include_deleted: bool = False
    ) -> SubjectVersion:
        """One version of ``subject``; ``None`` means the latest live one."""
        with self._lock:
            return self._version(subject, version, include_deleted)

    def referenced_by(self, subject: str, version: int | None) -> list[int]:
        with self._lock:
            found = self._version(subject, version, include_deleted=False)
            return self._referencing_ids(subject, found.version)

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        with self._lock, self._db:
            all_versions = self._versions(subject, include_deleted=True)
            if not all_versions:
                raise errors.subject_not_found(subject)
            live = [v for v in all_versions if not v.deleted]
            if permanent:
                if live:
                    raise errors.subject_not_soft_deleted(subject)
                for version in all_versions:
                    self._refuse_if_referenced(subject, version.version)
                self._db.execute("DELETE FROM versions WHERE subject = ?", (subject,))
                self._db.execute("DELETE FROM config WHERE subject = ?", (subject,))
                return [v.version for v in all_versions]
            if not live:
                raise errors.subject_soft_deleted(subject)
            for version in live:
                self._refuse_if_referenced(subject, version.version)
            self._db.execute("UPDATE versions SET deleted = 1 WHERE subject = ?", (subject,))
            return [v.version for v in live]

    def delete_version(self, subject: str, version: int | None, permanent: bool) -> int:
        with self._lock, self._db:
            found = self._version(subject, version, include_deleted=permanent)
            self._refuse_if_referenced(subject, found.version)
            if permanent:
                if not found.deleted:
                    raise errors.version_not_soft_deleted(subject, found.version)
                self._db.execute(
                    "DELETE FROM versions WHERE subject = ? AND version = ?",
                    (subject, found.version),
                )
            else:
                self._db.execute(
                    "UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?",
                    (subject, found.version),
                )
            return found.version

    # -- compatibility config --------------------------------------------------------------

    def compatibility(self, subject: str | None, default_to_global: bool = False) -> str:
        with self._lock:
            level = self._config(subject)
            if level is None and subject is not None:
                if not default_to_global:
                    raise errors.subject_config_not_found(subject)
                level = self._config(None)
        return level or DEFAULT_COMPATIBILITY

    def set_compatibility(self, subject: str | None, level: object) -> str:
        if not isinstance(level, str) or level.upper() not in COMPATIBILITY_LEVELS:
            raise errors.invalid_compatibility_level(level)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO config (subject, compatibility) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET compatibility = excluded.compatibility",
                (subject or _GLOBAL, level.upper()),
            )
        return level.upper()

    def delete_compatibility(self, subject: str | None) -> str:
        with self._lock, self._db:
            previous = self._config(subject)
            if previous is None and subject is not None:
                raise errors.subject_config_not_found(subject)
            self._db.execute("DELETE FROM config WHERE subject = ?", (subject or _GLOBAL,))
        return previous or DEFAULT_COMPATIBILITY

    # -- helpers (call with the lock held) ----------------------------------------------

    def _find_or_prepare(
        self, schema_type: str, schema: str, references: list[Reference]
    ) -> StoredSchema:
        """The stored schema with this canonical text, or an unsaved one (id 0)."""
        canonical = canonical_schema(schema_type, schema, self._referenced_texts(references))
        fingerprint = _fingerprint(schema_type, canonical, references)
        row = self._db.execute(
            "SELECT id FROM schemas WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        if row is not None:
            return self._schema(row[0])
        candidate = StoredSchema(0, schema_type, canonical, list(references))
        if schema_type == "PROTOBUF":
            self._serialized_protobuf(candidate)  # compiles .proto text: 42201 if invalid
        return candidate

    def _serialized_protobuf(self, schema: StoredSchema) -> str:
        if schema.id in self._serialized:
            return self._serialized[schema.id]
        compiled = serialized_protobuf(schema.schema, self._imports(schema.references))
        if schema.id:
            self._serialized[schema.id] = compiled
        return compiled

    def _imports(self, references: list[Reference]) -> dict[str, str]:
        """Every file a Protobuf schema imports through its references, transitively."""
        files: dict[str, str] = {}
        for ref, text in zip(references, self._referenced_texts(references), strict=True):
            files[ref.name] = text
            files.update(
                self._imports(self._version(ref.subject, ref.version, False).schema.references)
            )
        return files

    def _referenced_texts(self, references: list[Reference]) -> list[str]:
        texts = []
        for ref in references:
            try:
                texts.append(self._version(ref.subject, ref.version, False).schema.schema)
            except errors.RegistryError as exc:
                raise errors.invalid_schema(f"reference {ref.name!r}: {exc.message}") from exc
        return texts

    def _incompatibilities(
        self, subject: str, candidate: StoredSchema, previous: list[SubjectVersion]
    ) -> list[str]:
        if candidate.schema_type != "AVRO":
            return []
        level = self._config(subject) or self._config(None) or DEFAULT_COMPATIBILITY
        parsed_previous = [
            self._parsed_avro(v.schema) for v in previous if v.schema.schema_type == "AVRO"
        ]
        return avro_incompatibilities(level, self._parsed_avro(candidate), parsed_previous)

    def _parsed_avro(self, schema: StoredSchema) -> Any:
        referenced = self._referenced_texts(schema.references)
        return parse_avro(json.loads(schema.schema), referenced)

    def _insert_schema(self, schema: StoredSchema) -> StoredSchema:
        cursor = self._db.execute(
            "INSERT INTO schemas (fingerprint, schema_type, schema, refs) VALUES (?, ?, ?, ?)",
            (
                _fingerprint(schema.schema_type, schema.schema, schema.references),
                schema.schema_type,
                schema.schema,
                json.dumps([r.to_json() for r in schema.references]),
            ),
        )
        assert cursor.lastrowid is not None
        return StoredSchema(cursor.lastrowid, schema.schema_type, schema.schema, schema.references)

    def _schema(self, schema_id: int) -> StoredSchema:
        row = self._db.execute(
            "SELECT schema_type, schema, refs FROM schemas WHERE id = ?", (schema_id,)
        ).fetchone()
        if row is None:
            raise errors.schema_not_found(f"Schema {schema_id} not found")
        schema_type, schema, refs = row
        return StoredSchema(
            schema_id, schema_type, schema, [Reference(**r) for r in json.loads(refs)]
        )

    def _versions(self, subject: str, include_deleted: bool) -> list[SubjectVersion]:
        rows = self._db.execute(
            "SELECT version, schema_id, deleted FROM versions WHERE subject = ? AND deleted <= ? "
            "ORDER BY version",
            (subject, int(include_deleted)),
        ).fetchall()
        return [
            SubjectVersion(subject, version, self._schema(schema_id), bool(deleted))
            for version, schema_id, deleted in rows
        ]

    def _version(self, subject: str, version: int | None, include_deleted: bool) -> SubjectVersion:
        versions = self._versions(subject, include_deleted=True)
        if not versions:
            raise errors.subject_not_found(subject)
        if version is None:
            live = [v for v in versions if not v.deleted]
            if not live:
                raise errors.subject_not_found(subject)
            return live[-1]
        for candidate in versions:
            if candidate.version == version:
                if candidate.deleted and not include_deleted:
                    raise errors.version_not_found(subject, version)
                return candidate
        raise errors.version_not_found(subject, version)

    def _refuse_if_referenced(self, subject: str, version: int) -> None:
        if self._referencing_ids(subject, version):
            raise errors.referenced_schema(subject, version)

    def _referencing_ids(self, subject: str, version: int) -> list[int]:
        """Ids of live schemas that reference ``subject`` ``version``."""
        rows = self._db.execute(
            "SELECT DISTINCT s.id, s.refs FROM schemas s JOIN versions v ON v.schema_id = s.id "
            "WHERE v.deleted = 0 AND s.refs != '[]' ORDER BY s.id"
        ).fetchall()
        return [
            schema_id
            for schema_id, refs in rows
            if any(r["subject"] == subject and r["version"] == version for r in json.loads(refs))
        ]

    def _config(self, subject: str | None) -> str | None:
        row = self._db.execute(
            "SELECT compatibility FROM config WHERE subject = ?", (subject or _GLOBAL,)
        ).fetchone()
        return None if row is None else row[0]


def _fingerprint(schema_type: str, canonical: str, references: list[Reference]) -> str:
    key = json.dumps([schema_type, canonical, [r.to_json() for r in references]])
    return hashlib.sha256(key.encode()).hexdigest()


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
