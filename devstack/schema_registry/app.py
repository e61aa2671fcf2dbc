"""The Confluent Schema Registry REST API (the part serializers and the sink use), on starlette."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.schema_registry import errors
from devstack.schema_registry.errors import RegistryError
from devstack.schema_registry.schemas import SCHEMA_TYPES
from devstack.schema_registry.store import Reference, SchemaStore, StoredSchema

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryResponse(JSONResponse):
    media_type = CONTENT_TYPE


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _version_param(request: Request) -> int | None:
    """``latest`` / ``-1`` → None (the latest live version), otherwise a positive int."""
    raw = request.path_params["version"]
    if raw in ("latest", "-1"):
        return None
    try:
        version = int(raw)
    except ValueError:
        raise errors.invalid_version(raw) from None
    if not 1 <= version < 2**31:
        raise errors.invalid_version(raw)
    return version


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError as exc:
        raise RegistryError(400, 400, f"request body is not JSON: {exc}") from exc


async def _schema_request(request: Request) -> tuple[str, str, list[Reference]]:
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise errors.invalid_schema("the request body needs a 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    try:
        references = [
            Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
            for r in body.get("references") or []
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.invalid_schema(f"bad reference: {exc}") from exc
    return schema_type, body["schema"], references


def build_app(store: SchemaStore) -> Starlette:
    """A starlette app answering the registry API from ``store``."""

    def schema_text(request: Request, schema: StoredSchema) -> str | None:
        """The schema in the asked ``format``, when that differs from how it is stored."""
        if request.query_params.get("format") == "serialized" and schema.schema_type == "PROTOBUF":
            return store.serialized_protobuf(schema)
        return None

    async def root(request: Request) -> Response:
        return RegistryResponse({})

    async def list_subjects(request: Request) -> Response:
        prefix = request.query_params.get("subjectPrefix", "")
        return RegistryResponse(store.subjects(_flag(request, "deleted"), prefix))

    async def register(request: Request) -> Response:
        subject = request.path_params["subject"]
        registered = store.register(subject, *await _schema_request(request))
        return RegistryResponse(registered.to_json())

    async def lookup(request: Request) -> Response:
        subject = request.path_params["subject"]
        schema_type, schema, references = await _schema_request(request)
        found = store.lookup(subject, schema_type, schema, references, _flag(request, "deleted"))
        return RegistryResponse(found.to_json())

    async def delete_subject(request: Request) -> Response:
        subject = request.path_params["subject"]
        return RegistryResponse(store.delete_subject(subject, _flag(request, "permanent")))

    async def list_versions(request: Request) -> Response:
        versions = store.versions(request.path_params["subject"], _flag(request, "deleted"))
        return RegistryResponse([v.version for v in versions])

    async def get_version(request: Request) -> Response:
        found = store.version(
            request.path_params["subject"], _version_param(request), _flag(request, "deleted")
        )
        return RegistryResponse(found.to_json(schema_text(request, found.schema)))

    async def get_version_schema(request: Request) -> Response:
        found = store.version(request.path_params["subject"], _version_param(request))
        return Response(found.schema.schema, media_type=CONTENT_TYPE)

    async def referenced_by(request: Request) -> Response:
        subject = request.path_params["subject"]
        return RegistryResponse(store.referenced_by(subject, _version_param(request)))

    async def delete_version(request: Request) -> Response:
        deleted = store.delete_version(
            request.path_params["subject"], _version_param(request), _flag(request, "permanent")
        )
        return RegistryResponse(deleted)

    async def schema_by_id(request: Request) -> Response:
        found = store.schema_by_id(request.path_params["id"])
        return RegistryResponse(found.to_json(schema_text(request, found)))

    async def schema_text_by_id(request: Request) -> Response:
        found = store.schema_by_id(request.path_params["id"])
        return Response(found.schema, media_type=CONTENT_TYPE)

    async def schema_versions(request: Request) -> Response:
        pairs = store.schema_versions(request.path_params["id"], _flag(request, "deleted"))
        return RegistryResponse([{"subject": s, "version": v} for s, v in pairs])

    async def schema_subjects(request: Request) -> Response:
        pairs = store.schema_versions(request.path_params["id"], _flag(request, "deleted"))
        return RegistryResponse(sorted({s for s, _ in pairs}))

    async def schema_types(request: Request) -> Response:
        return RegistryResponse(list(SCHEMA_TYPES))

    async def get_config(request: Request) -> Response:
        subject = request.path_params.get("subject")
        level = store.compatibility(subject, _flag(request, "defaultToGlobal"))
        return RegistryResponse({"compatibilityLevel": level})

    async def put_config(request: Request) -> Response:
        body = await _json_body(request)
        level = body.get("compatibility") if isinstance(body, dict) else None
        stored = store.set_compatibility(request.path_params.get("subject"), level)
        return RegistryResponse({"compatibility": stored})

    async def delete_config(request: Request) -> Response:
        previous = store.delete_compatibility(request.path_params.get("subject"))
        return RegistryResponse({"compatibilityLevel": previous})

    async def check_compatibility(request: Request) -> Response:
        subject = request.path_params["subject"]
        schema_type, schema, references = await _schema_request(request)
        version = _version_param(request) if "version" in request.path_params else None
        reasons = store.incompatibilities(subject, version, schema_type, schema, references)
        body: dict[str, Any] = {"is_compatible": not reasons}
        if _flag(request, "verbose"):
            body["messages"] = reasons
        return RegistryResponse(body)

    async def get_mode(request: Request) -> Response:
        return RegistryResponse({"mode": "READWRITE"})

    async def on_registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RegistryError)
        return RegistryResponse(
            {"error_code": exc.error_code, "message": exc.message}, status_code=exc.http_status
        )

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        # Confluent's code for "error in the backend data store"; clients read the JSON body
        message = f"{type(exc).__name__}: {exc}"
        return RegistryResponse({"error_code": 50001, "message": message}, status_code=500)

    routes = [
        Route("/", root),
        Route("/subjects", list_subjects),
        Route("/subjects/{subject}", lookup, methods=["POST"]),
        Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
        Route("/subjects/{subject}/versions", list_versions),
        Route("/subjects/{subject}/versions", register, methods=["POST"]),
        Route("/subjects/{subject}/versions/{version}", get_version),
        Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
        Route("/subjects/{subject}/versions/{version}/schema", get_version_schema),
        Route("/subjects/{subject}/versions/{version}/referencedby", referenced_by),
        Route("/schemas/types", schema_types),
        Route("/schemas/ids/{id:int}", schema_by_id),
        Route("/schemas/ids/{id:int}/schema", schema_text_by_id),
        Route("/schemas/ids/{id:int}/versions", schema_versions),
        Route("/schemas/ids/{id:int}/subjects", schema_subjects),
        Route("/config", get_config),
        Route("/config", put_config, methods=["PUT"]),
        Route("/config", delete_config, methods=["DELETE"]),
        Route("/config/{subject}", get_config),
        Route("/config/{subject}", put_config, methods=["PUT"]),
        Route("/config/{subject}", delete_config, methods=["DELETE"]),
        Route("/compatibility/subjects/{subject}/versions", check_compatibility, methods=["POST"]),
        Route(
            "/compatibility/subjects/{subject}/versions/{version}",
            check_compatibility,
            methods=["POST"],
        ),
        Route("/mode", get_mode),
        Route("/mode/{subject}", get_mode),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={RegistryError: on_registry_error, Exception: on_unexpected_error},
    )


def create_app(data_dir: Path) -> Starlette:
    return build_app(SchemaStore(data_dir))
