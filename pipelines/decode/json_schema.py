"""JSON Schema in the Confluent wire format: the header stripped, the JSON text sent as is.

After the 5-byte header the value is plain JSON text, checked like schemaless JSON (the
whole run at once). Validation against the registered schema is opt-in (``validate=True``),
because it parses every record in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import jsonschema
import orjson
from jsonschema.protocols import Validator as JsonValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from pipelines.decode.base import ChunkAssembler, offsets_of, values_of
from pipelines.decode.json_text import LINES, check_json_lines
from pipelines.decode.registry import (
    WIRE_HEADER,
    BadWireFormat,
    SchemaCache,
    SchemaLookup,
    UnknownSchema,
    WriterSchema,
    shared_schema_id,
    split_wire_format,
)
from pipelines.records import Chunk, DeadLetter, KafkaRecord


class JsonSchemaDecoder:
    """Confluent-framed JSON values → JSON lines."""

    def __init__(self, format: str, registry: SchemaLookup, *, validate: bool = False) -> None:
        self._format, self._registry, self._validate = format, registry, validate
        self._schemas = SchemaCache(registry, "JSON", self._prepare)

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        rows, values = out.without_tombstones(records, values_of(records))
        shared_id = shared_schema_id(values)
        shared = self._schemas.get(shared_id) if shared_id is not None else ""
        if not isinstance(shared, str):  # one usable schema for the whole run: no Python loop
            bodies = [value[WIRE_HEADER.size :] for value in values]
            validators = [shared] * len(bodies)
        else:
            rows, bodies, validators = self._split_headers(records, rows, values, out)
        payloads, problems = check_json_lines(bodies)
        if self._validate:
            for position, payload in enumerate(payloads):
                validator = validators[position]
                if position not in problems and validator is not None:
                    problem = _schema_problem(payload, validator)
                    if problem is not None:
                        problems[position] = problem
        out.add_checked(LINES, records, offsets_of(records), rows, payloads, problems)
        return out.result()

    def _split_headers(
        self,
        records: Sequence[KafkaRecord],
        rows: range | list[int],
        values: list[bytes],
        out: ChunkAssembler,
    ) -> tuple[list[int], list[bytes], list[JsonValidator | None]]:
        """Record by record: the good rows, their bodies and validators; bad headers rejected."""
        kept: list[int] = []
        bodies: list[bytes] = []
        validators: list[JsonValidator | None] = []
        for i, value in zip(rows, values, strict=True):
            try:
                schema_id, start = split_wire_format(value)
            except BadWireFormat as bad:
                out.reject(records[i], str(bad))
                continue
            writer = self._schemas.get(schema_id)
            if isinstance(writer, str):
                out.reject(records[i], writer)
                continue
            kept.append(i)
            bodies.append(value[start:])
            validators.append(writer)
        return kept, bodies, validators

    def _prepare(self, writer: WriterSchema) -> JsonValidator | None:
        if not self._validate:
            return None
        try:
            schema = json.loads(writer.schema)
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
        except (json.JSONDecodeError, jsonschema.SchemaError) as error:
            raise ValueError(f"invalid JSON Schema: {error}") from error
        resources = _referenced_resources(writer, self._registry)
        validator: JsonValidator = validator_class(
            schema, registry=Registry().with_resources(resources)
        )
        return validator


def _schema_problem(payload: bytes, validator: JsonValidator) -> str | None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(orjson.loads(payload)))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"does not match its JSON Schema at {where}: {error.message}"


def _referenced_resources(
    writer: WriterSchema, registry: SchemaLookup
) -> list[tuple[str, Resource[object]]]:
    """Referenced schemas by the name the referencing schema uses in ``$ref``."""
    resources: list[tuple[str, Resource[object]]] = []
    for ref in writer.references:
        try:
            referenced = registry.schema_by_version(ref.subject, ref.version)
        except UnknownSchema as unknown:
            raise ValueError(f"reference {ref.name!r}: {unknown}") from unknown
        contents = json.loads(referenced.schema)
        resources.append((ref.name, Resource.from_contents(contents, default_specification=DRAFT7)))
        resources += _referenced_resources(referenced, registry)
    return resources
