"""Management commands (`POST /v1/rest/mgmt`): parse the command, act on the store, answer.

Each command is one regular expression and one handler. A command no pattern matches gets
Kusto's syntax error, never a silent success.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from devstack.kusto_emulator.azure_storage import StorageResources
from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.kusto_types import CLR_TYPES, UnknownTypeError, canonical_type
from devstack.kusto_emulator.responses import ResultTable
from devstack.kusto_emulator.store import Extent, KustoStore

EMULATOR_VERSION = "1.0.0-emulator"
_NAME = r"(?:\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\]|[\w.\-]+)"
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
_EXTENT_COLUMNS = [
    ("ExtentId", "guid"),
    ("DatabaseName", "string"),
    ("TableName", "string"),
    ("MaxCreatedOn", "datetime"),
    ("OriginalSize", "real"),
    ("ExtentSize", "real"),
    ("CompressedSize", "real"),
    ("IndexSize", "real"),
    ("RowCount", "long"),
    ("MinCreatedOn", "datetime"),
    ("Tags", "string"),
]


def unquote_name(name: str) -> str:
    """`['a b']`, `["x"]` or `x` -> the entity name."""
    name = name.strip()
    if name.startswith("["):
        return name[1:-1].strip()[1:-1]
    return name


@dataclass
class MgmtContext:
    store: KustoStore
    storage: StorageResources | None
    database: str


Handler = Callable[[MgmtContext, re.Match[str]], ResultTable]
_COMMANDS: list[tuple[re.Pattern[str], Handler]] = []


def command(pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS.append((re.compile(pattern, re.IGNORECASE | re.DOTALL), handler))
        return handler

    return register


def execute_mgmt(context: MgmtContext, text: str) -> ResultTable:
    text = text.strip().rstrip(";").strip()
    for pattern, handler in _COMMANDS:
        match = pattern.fullmatch(text)
        if match:
            return handler(context, match)
    first_line = text.splitlines()[0] if text else ""
    raise KustoRequestError.syntax(
        f"Syntax error: the emulator does not know the command '{first_line[:200]}'"
    )


# Cluster-level commands the ingest SDK issues


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
    rf"\.create\s+database\s+(?P<db>{_NAME})(?:\s+volatile|\s+persist\s*\(.*?\))?(?P<ifnot>\s+ifnotexists)?"
)
def _create_database(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    database = unquote_name(match["db"])
    if database in context.store.databases() and not match["ifnot"]:
        raise KustoRequestError.bad_request(f"Database '{database}' already exists.")
    context.store.create_database(database)
    return ResultTable(
        [("DatabaseName", "string"), ("PersistentStorage", "string")], [[database, ""]]
    )


@command(r"\.show\s+databases")
def _show_databases(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    return ResultTable([("DatabaseName", "string")], [[name] for name in context.store.databases()])


# Tables


def _parse_schema(text: str) -> list[tuple[str, str]]:
    columns = []
    for part in _split_top_level(text):
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


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets (`['a,b']:string`)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


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
    rf"\.(?P<verb>create|create-merge|alter-merge)\s+table\s+(?P<table>{_NAME})\s*\((?P<schema>.*?)\)(?:\s+with\s*\(.*\))?"
)
def _create_table(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    verb = match["verb"].lower()
    columns = context.store.create_table(
        context.database, table, _parse_schema(match["schema"]), merge=verb != "create"
    )
    return ResultTable(_SCHEMA_COLUMNS, [_schema_row(context, table, columns)])


@command(rf"\.drop\s+table\s+(?P<table>{_NAME})(?P<ifexists>\s+ifexists)?")
def _drop_table(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    context.store.drop_table(
        context.database, unquote_name(match["table"]), bool(match["ifexists"])
    )
    return _show_tables(context, match)


@command(r"\.show\s+tables")
def _show_tables(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    rows = [[name, context.database, "", ""] for name, _ in context.store.tables(context.database)]
    return ResultTable(_TABLE_INFO_COLUMNS, rows)


@command(rf"\.show\s+table\s+(?P<table>{_NAME})\s+(?:schema\s+as\s+json|(?P<csl>cslschema))")
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


@command(rf"\.clear\s+table\s+(?P<table>{_NAME})\s+data")
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
    rf"\.(?:create|create-or-alter|alter)\s+table\s+(?P<table>{_NAME})\s+ingestion\s+(?P<kind>\w+)\s+mapping\s+(?P<name>\"[^\"]+\"|'[^']+'|\w+)\s+(?P<mapping>.+?)(?:\s+with\s*\(.*\))?"
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


@command(rf"\.show\s+table\s+(?P<table>{_NAME})\s+ingestion\s+(?:(?P<kind>\w+)\s+)?mappings?")
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
    rf"\.drop\s+table\s+(?P<table>{_NAME})\s+ingestion\s+(?P<kind>\w+)\s+mapping\s+(?P<name>\"[^\"]+\"|'[^']+'|\w+)"
)
def _drop_mapping(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    context.store.drop_mapping(context.database, table, match["kind"], match["name"].strip("'\""))
    return _show_mappings(context, match)


# Policies


@command(
    rf"\.alter\s+(?P<entity>table|database)\s+(?P<name>{_NAME})\s+policy\s+streamingingestion\s+(?P<value>.+)"
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


@command(rf"\.delete\s+table\s+(?P<name>{_NAME})\s+policy\s+streamingingestion")
def _delete_streaming_policy(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    context.store.set_streaming_policy(context.database, unquote_name(match["name"]), False)
    return ResultTable([("Status", "string")], [["Success"]])


# Extents

# A string literal in single or double quotes; backslash escapes the next character.
_STRING = r"(?P<q>['\"])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)"
# One condition of `where tags has 'x' and tags !contains 'y'`.
_TAG_CONDITION = re.compile(
    r"tags\s+(?P<neg>!)?(?P<op>has|contains|hasprefix|startswith)(?:_cs)?\s*"
    rf"{_STRING}\s*(?:and\s+|$)",
    re.IGNORECASE,
)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _tag_predicate(where: str | None) -> Callable[[Extent], bool]:
    """`tags has 'x' and tags !contains 'y'`: conditions on an extent's tags, all must hold."""
    if not where:
        return lambda _: True
    conditions = []
    rest = where.strip()
    while rest:
        found = _TAG_CONDITION.match(rest)
        if found is None:
            raise KustoRequestError.syntax(f"Unsupported extent filter '{rest}'")
        conditions.append(found)
        rest = rest[found.end() :]

    def tag_matches(op: str, value: str, tag: str) -> bool:
        if op == "has":
            return tag == value or value in re.split(r"[^\w:/.\-]+", tag)
        if op == "contains":
            return value.lower() in tag.lower()
        return tag.startswith(value)

    def predicate(extent: Extent) -> bool:
        for condition in conditions:
            op, value = condition["op"].lower(), _unescape(condition["value"])
            hit = any(tag_matches(op, value, tag) for tag in extent.tags)
            if hit == bool(condition["neg"]):
                return False
        return True

    return predicate


def _selected_extents(context: MgmtContext, match: re.Match[str]) -> list[Extent]:
    table = unquote_name(match["table"]) if match["table"] else None
    database = unquote_name(match["db"]) if match["db"] else context.database
    predicate = _tag_predicate(match["where"])
    return [extent for extent in context.store.extents(database, table) if predicate(extent)]


def _extent_rows(database: str, extents: list[Extent]) -> list[list[object]]:
    return [
        [
            extent.extent_id,
            database,
            extent.table_name,
            extent.created,
            0.0,
            0.0,
            0.0,
            0.0,
            extent.row_count,
            extent.created,
            "\r\n".join(extent.tags),
        ]
        for extent in extents
    ]


_SHOW_EXTENTS = (
    rf"\.show\s+(?:table\s+(?P<table>{_NAME})\s+|database\s+(?P<db>{_NAME})\s+)?extents"
    r"(?:\s+where\s+(?P<where>.+?))?(?:\s+with\s*\(.*\))?"
)


@command(_SHOW_EXTENTS)
def _show_extents(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    database = unquote_name(match["db"]) if match["db"] else context.database
    return ResultTable(_EXTENT_COLUMNS, _extent_rows(database, _selected_extents(context, match)))


@command(r"\.drop\s+extents\s*<\|\s*" + _SHOW_EXTENTS)
def _drop_extents_by_query(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    extents = _selected_extents(context, match)
    database = unquote_name(match["db"]) if match["db"] else context.database
    dropped = context.store.drop_extents(database, [extent.extent_id for extent in extents])
    return _dropped(dropped)


@command(rf"\.drop\s+extents?\s+\((?P<ids>[^)]*)\)\s+from\s+(?P<table>{_NAME})")
def _drop_extents_by_id(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    wanted = {part.strip().strip("'\"") for part in match["ids"].split(",") if part.strip()}
    ids = [
        extent.extent_id
        for extent in context.store.extents(context.database, table)
        if extent.extent_id in wanted
    ]
    return _dropped(context.store.drop_extents(context.database, ids))


@command(rf"\.drop\s+extents\s+from\s+(?P<table>{_NAME})\s+where\s+(?P<where>.+)")
def _drop_extents_where(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    predicate = _tag_predicate(match["where"])
    ids = [
        extent.extent_id
        for extent in context.store.extents(context.database, table)
        if predicate(extent)
    ]
    return _dropped(context.store.drop_extents(context.database, ids))


def _dropped(extents: list[Extent]) -> ResultTable:
    columns = [("ExtentId", "guid"), ("TableName", "string"), ("CreatedOn", "datetime")]
    return ResultTable(columns, [[e.extent_id, e.table_name, e.created] for e in extents])


@command(rf"\.drop\s+extent\s+tags\s+from\s+table\s+(?P<table>{_NAME})\s*\((?P<tags>.*)\)")
def _drop_extent_tags(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    tags = [part.strip().strip("'\"") for part in _split_top_level(match["tags"]) if part.strip()]
    changed = context.store.drop_tags(context.database, table, tags)
    columns = [
        ("OriginalExtentId", "string"),
        ("ResultExtentId", "string"),
        ("ResultExtentTags", "string"),
    ]
    return ResultTable(columns, [[e.extent_id, e.extent_id, "\r\n".join(e.tags)] for e in changed])


# Failures


@command(r"\.show\s+ingestion\s+failures(?:\s*\|.*)?")
def _show_failures(context: MgmtContext, _: re.Match[str]) -> ResultTable:
    columns = [
        ("OperationId", "guid"),
        ("Database", "string"),
        ("Table", "string"),
        ("FailedOn", "datetime"),
        ("IngestionSourcePath", "string"),
        ("Details", "string"),
        ("FailureKind", "string"),
        ("RootActivityId", "guid"),
        ("OperationKind", "string"),
        ("OriginatesFromUpdatePolicy", "bool"),
        ("ErrorCode", "string"),
        ("ShouldRetry", "bool"),
    ]
    rows = [
        [
            operation,
            context.database,
            table,
            failed_on,
            path,
            details,
            kind,
            operation,
            "DataIngestPull",
            False,
            code,
            retry,
        ]
        for operation, table, failed_on, path, details, kind, code, retry in context.store.failures(
            context.database
        )
    ]
    return ResultTable(columns, rows)
