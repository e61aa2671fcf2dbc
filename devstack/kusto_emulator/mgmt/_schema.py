"""Cluster, database, table, mapping and policy commands."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.kusto_types import CLR_TYPES, UnknownTypeError, canonical_type
from devstack.kusto_emulator.mgmt._registry import (
    NAME,
    MgmtContext,
    command,
    split_top_level,
    unquote_name,
)
from devstack.kusto_emulator.responses import ResultTable

EMULATOR_VERSION = "1.0.0-emulator"
_MAPPING_KINDS = {
    "json": "Json",
    "csv": "Csv",
    "avro": "Avro",
    "apacheavro": "ApacheAvro",
    "parquet": "Parquet",
    "orc": "Orc",
    "w3clogfile": "W3CLogFile",
}
_TABLE_INFO_COLUMNS = [
    ("TableName", "string"),
    ("DatabaseName", "string"),
    ("Folder", "string"),
    ("DocString", "string"),
]
_MAPPING_COLUMNS = [
    ("Name", "string"),
    ("Kind", "string"),
    ("Mapping", "string"),
    ("LastUpdatedOn", "datetime"),
    ("Database", "string"),
    ("Table", "string"),
]


@command(r"\.get\s+ingestion\s+resources")
def _ingestion_resources(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    if context.storage is None:
        raise KustoRequestError.bad_request("The emulator runs without a storage connection string")
    rows = [[resource.resource_type, resource.url] for resource in context.storage.resources()]
    return ResultTable([("ResourceTypeName", "string"), ("StorageRoot", "string")], rows)


@command(r"\.get\s+kusto\s+identity\s+token")
def _identity_token(_: MgmtContext, __: re.Match[str]) -> ResultTable:
    return ResultTable([("AuthorizationContext", "string")], [["kusto-emulator-identity-token"]])


@command(r"\.show\s+version")
def _version(_: MgmtContext, __: re.Match[str]) -> ResultTable:
    columns = [
        ("BuildVersion", "string"),
        ("BuildTime", "datetime"),
        ("ServiceType", "string"),
        ("ProductVersion", "string"),
    ]
    return ResultTable(
        columns, [[EMULATOR_VERSION, datetime(2026, 1, 1), "Engine", EMULATOR_VERSION]]
    )


# Databases


@command(
    rf"\.create\s+database\s+(?P<db>{NAME})(?:\s+volatile|\s+persist\s*\(.*?\))?(?P<ifnot>\s+ifnotexists)?"
)
def _create_database(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    database = unquote_name(match["db"])
    if context.store.has_database(database) and not match["ifnot"]:
        raise KustoRequestError.bad_request(f"Database '{database}' already exists.")
    context.store.create_database(database)
    return ResultTable(
        [("DatabaseName", "string"), ("PersistentStorage", "string")], [[database, ""]]
    )


@command(rf"\.drop\s+database\s+(?P<db>{NAME})(?P<ifexists>\s+ifexists)?")
def _drop_database(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    database = unquote_name(match["db"])
    if context.store.has_database(database) or not match["ifexists"]:
        context.store.drop_database(database)
    return _show_databases(context, match)


@command(r"\.show\s+databases")
def _show_databases(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    return ResultTable([("DatabaseName", "string")], [[name] for name in context.store.databases()])


# Tables


def _parse_schema(text: str) -> list[tuple[str, str]]:
    columns = []
    for part in split_top_level(text):
        if not part.strip():
            continue
        name, separator, kind = part.rpartition(":")
        if not separator:
            raise KustoRequestError.syntax(f"Column '{part.strip()}' has no type (name:type)")
        try:
            columns.append((unquote_name(name), canonical_type(kind)))
        except UnknownTypeError as error:
            raise KustoRequestError.syntax(str(error)) from None
    if not columns:
        raise KustoRequestError.syntax("A table needs at least one column")
    return columns


def _schema_row(context: MgmtContext, table: str, columns: list[tuple[str, str]]) -> list[object]:
    schema = ",".join(
        f"['{name}']:{kind}" if not name.isidentifier() else f"{name}:{kind}"
        for name, kind in columns
    )
    return [table, schema, context.database, "", ""]


_SCHEMA_COLUMNS = [
    ("TableName", "string"),
    ("Schema", "string"),
    ("DatabaseName", "string"),
    ("Folder", "string"),
    ("DocString", "string"),
]


@command(
    rf"\.(?P<verb>create|create-merge|alter-merge)\s+table\s+(?P<table>{NAME})\s*\((?P<schema>.*?)\)(?:\s+with\s*\(.*\))?"
)
def _create_table(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    verb = match["verb"].lower()
    columns = context.store.create_table(
        context.database, table, _parse_schema(match["schema"]), merge=verb != "create"
    )
    return ResultTable(_SCHEMA_COLUMNS, [_schema_row(context, table, columns)])


@command(rf"\.drop\s+table\s+(?P<table>{NAME})(?P<ifexists>\s+ifexists)?")
def _drop_table(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    context.store.drop_table(
        context.database, unquote_name(match["table"]), bool(match["ifexists"])
    )
    return _show_tables(context, match)


@command(r"\.show\s+tables")
def _show_tables(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    rows = [[name, context.database, "", ""] for name, _ in context.store.tables(context.database)]
    return ResultTable(_TABLE_INFO_COLUMNS, rows)


@command(rf"\.show\s+table\s+(?P<table>{NAME})\s+(?:schema\s+as\s+json|(?P<csl>cslschema))")
def _show_schema(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    columns = context.store.require_table(context.database, table)
    if match["csl"]:
        return ResultTable(_SCHEMA_COLUMNS, [_schema_row(context, table, columns)])
    schema = {
        "Name": table,
        "OrderedColumns": [
            {"Name": name, "Type": CLR_TYPES[kind], "CslType": kind} for name, kind in columns
        ],
    }
    return ResultTable(
        _SCHEMA_COLUMNS, [[table, orjson.dumps(schema).decode(), context.database, "", ""]]
    )


@command(rf"\.clear\s+table\s+(?P<table>{NAME})\s+data")
def _clear_table(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    extents = context.store.extents(context.database, table)
    context.store.drop_extents(context.database, [extent.extent_id for extent in extents])
    return ResultTable([("Status", "string")], [["Success"]])


# Ingestion mappings


def _mapping_text(raw: str) -> str:
    raw = raw.strip()
    for fence in ("```", "'", '"'):
        if raw.startswith(fence) and raw.endswith(fence) and len(raw) >= 2 * len(fence):
            raw = raw[len(fence) : -len(fence)]
            break
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise KustoRequestError.bad_request(
            f"The ingestion mapping is not valid JSON: {error}"
        ) from None
    return raw


@command(
    rf"\.(?:create|create-or-alter|alter)\s+table\s+(?P<table>{NAME})\s+ingestion\s+(?P<kind>\w+)\s+mapping\s+(?P<name>\"[^\"]+\"|'[^']+'|\w+)\s+(?P<mapping>.+?)(?:\s+with\s*\(.*\))?"
)
def _create_mapping(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    kind = _MAPPING_KINDS.get(match["kind"].lower())
    if kind is None:
        raise KustoRequestError.syntax(f"Unknown ingestion mapping kind '{match['kind']}'")
    name = match["name"].strip("'\"")
    mapping = _mapping_text(match["mapping"])
    context.store.create_mapping(context.database, table, kind, name, mapping)
    return ResultTable(
        _MAPPING_COLUMNS, [[name, kind, mapping, datetime.now(UTC), context.database, table]]
    )


@command(rf"\.show\s+table\s+(?P<table>{NAME})\s+ingestion\s+(?:(?P<kind>\w+)\s+)?mappings?")
def _show_mappings(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    kind = (match["kind"] or "").lower()
    rows = [
        [name, mapping_kind, mapping, None, context.database, table]
        for name, mapping_kind, mapping in context.store.mappings(context.database, table)
        if not kind or mapping_kind.lower() == kind
    ]
    return ResultTable(_MAPPING_COLUMNS, rows)


@command(
    rf"\.drop\s+table\s+(?P<table>{NAME})\s+ingestion\s+(?P<kind>\w+)\s+mapping\s+(?P<name>\"[^\"]+\"|'[^']+'|\w+)"
)
def _drop_mapping(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    context.store.drop_mapping(context.database, table, match["kind"], match["name"].strip("'\""))
    return _show_mappings(context, match)


# Policies


@command(
    rf"\.alter\s+(?P<entity>table|database)\s+(?P<name>{NAME})\s+policy\s+streamingingestion\s+(?P<value>.+)"
)
def _streaming_policy(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    value = match["value"].strip()
    if value.lower() in ("enable", "disable"):
        enabled = value.lower() == "enable"
    else:
        try:
            enabled = bool(orjson.loads(_mapping_text(value)).get("IsEnabled", False))
        except (KustoRequestError, AttributeError):
            raise KustoRequestError.syntax(f"Invalid streaming ingestion policy: {value}") from None
    is_table = match["entity"].lower() == "table"
    name = unquote_name(match["name"])
    database = context.database if is_table else name
    context.store.set_streaming_policy(database, name if is_table else "", enabled)
    policy = orjson.dumps({"IsEnabled": enabled, "HintAllocatedRate": None}).decode()
    columns = [("PolicyName", "string"), ("EntityName", "string"), ("Policy", "string")]
    return ResultTable(columns, [["StreamingIngestionPolicy", f"[{database}].[{name}]", policy]])


@command(rf"\.delete\s+table\s+(?P<name>{NAME})\s+policy\s+streamingingestion")
def _delete_streaming_policy(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    context.store.set_streaming_policy(context.database, unquote_name(match["name"]), False)
    return ResultTable([("Status", "string")], [["Success"]])
