"""Avro schema compatibility, by the Avro spec's rules of schema resolution.

``BACKWARD``: the new schema can read what the previous one wrote; ``FORWARD``: the previous
one can read what the new one writes; ``FULL``: both; ``_TRANSITIVE``: against every version,
not only the latest. Only Avro is checked; JSON Schema and Protobuf are always accepted, a
simplification a development registry can afford.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# writer type -> reader types that can read it (the spec's promotions)
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def avro_incompatibilities(level: str, new: Any, previous: Sequence[Any]) -> list[str]:
    """Problems keeping ``new`` after ``previous`` (oldest first, parsed) at ``level``."""
    if level == "NONE" or not previous:
        return []
    against = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    problems: list[str] = []
    for old in against:
        if level.startswith(("BACKWARD", "FULL")):
            problems += _ReadCheck(reader=new, writer=old).problems()
        if level.startswith(("FORWARD", "FULL")):
            problems += _ReadCheck(reader=old, writer=new).problems()
    return problems


class _ReadCheck:
    """Can data written with ``writer`` be read with ``reader``?"""

    def __init__(self, reader: Any, writer: Any) -> None:
        self._reader_root, self._writer_root = reader, writer
        self._reader_names = _named_types(reader)
        self._writer_names = _named_types(writer)
        self._visiting: set[tuple[str, str]] = set()

    def problems(self) -> list[str]:
        return self._check(self._reader_root, self._writer_root, "$")

    def _check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = _resolve(reader, self._reader_names)
        writer = _resolve(writer, self._writer_names)
        if isinstance(writer, list):
            return [p for branch in writer for p in self._check(reader, branch, path)]
        if isinstance(reader, list):
            if any(not self._check(branch, writer, path) for branch in reader):
                return []
            return [f"{path}: reader union {_kind(reader)} cannot read writer {_kind(writer)}"]
        reader_kind, writer_kind = _kind(reader), _kind(writer)
        if writer_kind in _PRIMITIVES:
            if reader_kind == writer_kind or reader_kind in _PROMOTIONS.get(writer_kind, ()):
                return []
            return [f"{path}: reader type {reader_kind} cannot read writer type {writer_kind}"]
        if reader_kind != writer_kind:
            return [f"{path}: reader type {reader_kind} cannot read writer type {writer_kind}"]
        if writer_kind == "array":
            return self._check(reader["items"], writer["items"], f"{path}[]")
        if writer_kind == "map":
            return self._check(reader["values"], writer["values"], f"{path}{{}}")
        if not _same_name(reader, writer):
            return [f"{path}: reader {reader['name']} cannot read writer {writer['name']}"]
        if writer_kind == "fixed" and reader["size"] != writer["size"]:
            return [f"{path}: fixed size {writer['size']} read as {reader['size']}"]
        if writer_kind == "enum":
            missing = set(writer["symbols"]) - set(reader["symbols"])
            if missing and "default" not in reader:
                return [f"{path}: reader enum {reader['name']} lacks symbols {sorted(missing)}"]
            return []
        if writer_kind == "record":
            return self._check_record(reader, writer, path)
        return []

    def _check_record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        key = (reader["name"], writer["name"])
        if key in self._visiting:  # a recursive type: already being checked further up
            return []
        self._visiting.add(key)
        writer_fields = {f["name"]: f for f in writer["fields"]}
        problems: list[str] = []
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            if match is not None:
                problems += self._check(field["type"], match["type"], f"{path}.{field['name']}")
            elif "default" not in field:
                problems.append(
                    f"{path}.{field['name']}: reader field has no default and the writer "
                    "does not write it"
                )
        self._visiting.discard(key)
        return problems


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "[" + ", ".join(_kind(branch) for branch in schema) + "]"
    if isinstance(schema, dict):
        return _kind(schema["type"]) if isinstance(schema["type"], list | dict) else schema["type"]
    return str(schema)


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    """Replace a reference to a named type by its definition, and unwrap ``{"type": "int"}``."""
    if isinstance(schema, str):
        return names.get(schema, schema)
    if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES:
        return schema["type"]
    return schema


def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    candidates = {reader["name"], *reader.get("aliases", [])}
    unqualified = {name.rsplit(".", 1)[-1] for name in candidates}
    return writer["name"] in candidates or writer["name"].rsplit(".", 1)[-1] in unqualified


def _named_types(schema: Any) -> dict[str, Any]:
    """Every record, enum and fixed defined in a parsed schema, by full name."""
    found: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
                found[node["name"]] = node
            pending.extend(f["type"] for f in node.get("fields", []))
            pending.extend(node[key] for key in ("items", "values") if key in node)
            if isinstance(node.get("type"), list | dict):
                pending.append(node["type"])
    return found
