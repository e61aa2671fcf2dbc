"""Extent commands (show, drop, tags) and ingestion failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.mgmt._registry import (
    NAME,
    MgmtContext,
    command,
    split_top_level,
    unquote_name,
)
from devstack.kusto_emulator.responses import ResultTable
from devstack.kusto_emulator.store import Extent

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

# A string literal in single or double quotes; backslash escapes the next character.
_STRING = r"(?P<q>['\"])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)"
# One condition of `where tags has 'x' and tags !contains 'y'`.
_TAG_CONDITION = re.compile(
    r"tags\s+(?P<neg>!)?(?P<op>has|contains|hasprefix|startswith)(?P<cs>_cs)?\s*"
    rf"{_STRING}\s*(?:and\s+|$)",
    re.IGNORECASE,
)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _tag_matcher(op: str, value: str, case_sensitive: bool) -> Callable[[str], bool]:
    """Kusto's string operators on one tag: `has` and `hasprefix` match whole terms
    (delimited by non-alphanumerics), `contains` and `startswith` any substring."""
    flags = 0 if case_sensitive else re.IGNORECASE
    escaped = re.escape(value)
    patterns = {
        "has": rf"(?<![0-9A-Za-z]){escaped}(?![0-9A-Za-z])",
        "hasprefix": rf"(?<![0-9A-Za-z]){escaped}",
        "contains": escaped,
        "startswith": rf"^{escaped}",
    }
    pattern = re.compile(patterns[op], flags)
    return lambda tag: pattern.search(tag) is not None


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

    def predicate(extent: Extent) -> bool:
        for condition in conditions:
            matches = _tag_matcher(
                condition["op"].lower(), _unescape(condition["value"]), bool(condition["cs"])
            )
            hit = any(matches(tag) for tag in extent.tags)
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
    rf"\.show\s+(?:table\s+(?P<table>{NAME})\s+|database\s+(?P<db>{NAME})\s+)?extents"
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


@command(rf"\.drop\s+extents?\s+\((?P<ids>[^)]*)\)\s+from\s+(?P<table>{NAME})")
def _drop_extents_by_id(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    wanted = {part.strip().strip("'\"") for part in match["ids"].split(",") if part.strip()}
    ids = [
        extent.extent_id
        for extent in context.store.extents(context.database, table)
        if extent.extent_id in wanted
    ]
    return _dropped(context.store.drop_extents(context.database, ids))


@command(rf"\.drop\s+extents\s+from\s+(?P<table>{NAME})\s+where\s+(?P<where>.+)")
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


@command(rf"\.drop\s+extent\s+tags\s+from\s+table\s+(?P<table>{NAME})\s*\((?P<tags>.*)\)")
def _drop_extent_tags(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    table = unquote_name(match["table"])
    tags = [part.strip().strip("'\"") for part in split_top_level(match["tags"]) if part.strip()]
    changed = context.store.drop_tags(context.database, table, tags)
    columns = [
        ("OriginalExtentId", "string"),
        ("ResultExtentId", "string"),
        ("ResultExtentTags", "string"),
    ]
    return ResultTable(columns, [[e.extent_id, e.extent_id, "\r\n".join(e.tags)] for e in changed])


# Failures


# One condition of `| where FailedOn >= datetime(...) and Table == 'T'`: what a client
# polling for its own recent failures asks; other filters are refused, never ignored.
_FAILURE_CONDITION = re.compile(
    r"(?:FailedOn\s*(?P<op>>=|>)\s*datetime\(\s*(?P<since>[^)]*?)\s*\)"
    rf"|Table\s*==\s*{_STRING})\s*(?:and\s+|$)",
    re.IGNORECASE,
)


def _failure_filter(where: str | None) -> tuple[datetime | None, str | None]:
    """(since, table) of a `.show ingestion failures | where ...` filter."""
    since, table = None, None
    rest = (where or "").strip()
    while rest:
        found = _FAILURE_CONDITION.match(rest)
        if found is None:
            raise KustoRequestError.syntax(f"Unsupported ingestion failures filter '{rest}'")
        if found["since"] is not None:
            try:
                moment = datetime.fromisoformat(found["since"].replace("Z", "+00:00"))
            except ValueError:
                raise KustoRequestError.syntax(f"Invalid datetime '{found['since']}'") from None
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
            # `>` on stored microseconds: one microsecond later, inclusive.
            since = moment + timedelta(microseconds=1) if found["op"] == ">" else moment
        else:
            table = _unescape(found["value"])
        rest = rest[found.end() :]
    return since, table


@command(r"\.show\s+ingestion\s+failures(?:\s*\|\s*where\s+(?P<where>.+))?")
def _show_failures(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    since, table_filter = _failure_filter(match["where"])
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
            context.database, since=since, table=table_filter
        )
    ]
    return ResultTable(columns, rows)
