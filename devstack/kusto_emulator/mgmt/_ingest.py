"""Direct ingestion commands: `.ingest inline into table` and `.ingest into table` from blobs.

Both run synchronously in the request, like on a real cluster, and accept the ingestion
properties of their `with (...)` clause: format, ingestionMappingReference,
ingestionMapping, tags, ingestIfNotExists, ignoreFirstRecord.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobClient

from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.formats import IngestionFailure
from devstack.kusto_emulator.ingestion import AlreadyIngested, IngestionRequest, ingest_file
from devstack.kusto_emulator.mgmt._registry import NAME, MgmtContext, command, unquote_name
from devstack.kusto_emulator.responses import ResultTable

_PROPERTY = re.compile(
    r"(?P<key>\w+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^,)\s]+)"
)
_SOURCE = re.compile(r"h?(?P<q>['\"])(?P<url>.*?)(?P=q)")
_WITH = r"(?:\s+with\s*\((?P<props>.*?)\))?"
_RESULT_COLUMNS = [
    ("ExtentId", "guid"),
    ("ItemLoaded", "string"),
    ("Duration", "timespan"),
    ("HasErrors", "bool"),
    ("OperationId", "guid"),
]


def _properties(text: str | None) -> dict[str, str]:
    properties = {}
    for found in _PROPERTY.finditer(text or ""):
        value = found["value"]
        if value[0] in "'\"":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        properties[found["key"].lower()] = value
    return properties


def _json_list(value: str | None) -> list[str]:
    if not value:
        return []
    try:
        return [str(item) for item in orjson.loads(value)]
    except (orjson.JSONDecodeError, TypeError):
        raise KustoRequestError.bad_request(f"expected a JSON list of strings: {value}") from None


def _request(context: MgmtContext, table: str, props: str | None) -> IngestionRequest:
    properties = _properties(props)
    return IngestionRequest(
        database=context.database,
        table=table,
        format=properties.get("format", "csv"),
        mapping_reference=properties.get("ingestionmappingreference"),
        inline_mapping=properties.get("ingestionmapping"),
        tags=_json_list(properties.get("tags")),
        ingest_if_not_exists=_json_list(properties.get("ingestifnotexists")),
        ignore_first_record=properties.get("ignorefirstrecord", "false").lower() == "true",
    )


def _ingest(context: MgmtContext, request: IngestionRequest, path: Path, item: str) -> list[object]:
    """One result row; Kusto's own error code if the data is refused."""
    if context.faults.refuses_writes(request.database, request.table):
        raise KustoRequestError(
            400,
            "BadRequest_TableWriteRefused",
            f"Table '{request.database}.{request.table}' refuses writes "
            "(emulator fault injection).",
            "Kusto.DataNode.Exceptions.IngestionException",
            True,
        )
    started = datetime.now(UTC)
    try:
        outcome = ingest_file(context.store, request, path)
    except AlreadyIngested:
        return []
    except IngestionFailure as failure:
        raise KustoRequestError(
            400,
            failure.error_code,
            failure.details,
            "Kusto.DataNode.Exceptions.IngestionException",
            failure.permanent,
        ) from None
    elapsed = datetime.now(UTC) - started
    return [outcome.extent_id, item, elapsed, False, str(uuid.uuid4())]


@command(rf"\.ingest\s+inline\s+into\s+table\s+(?P<table>{NAME}){_WITH}\s*<\|\s?(?P<data>.*)")
def _ingest_inline(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    request = _request(context, unquote_name(match["table"]), match["props"])
    with tempfile.TemporaryDirectory(prefix="kusto-inline-") as scratch:
        path = Path(scratch) / "inline"
        path.write_text(match["data"], encoding="utf-8")
        row = _ingest(context, request, path, "inline")
    return ResultTable(_RESULT_COLUMNS, [row] if row else [])


@command(
    rf"\.ingest\s+(?:async\s+)?into\s+table\s+(?P<table>{NAME})\s*\((?P<sources>[^)]*)\){_WITH}"
)
def _ingest_from_blobs(context: MgmtContext, match: re.Match[str]) -> ResultTable:
    request = _request(context, unquote_name(match["table"]), match["props"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="kusto-ingest-") as scratch:
        for index, source in enumerate(_SOURCE.finditer(match["sources"])):
            url = source["url"]
            path = Path(scratch) / f"source-{index}"
            try:
                with path.open("wb") as stream:
                    BlobClient.from_blob_url(url).download_blob().readinto(stream)
            except AzureError as error:
                raise KustoRequestError.bad_request(
                    f"Cannot download '{url.split('?', 1)[0]}': {type(error).__name__}"
                ) from None
            row = _ingest(context, request, path, url.split("?", 1)[0])
            if row:
                rows.append(row)
    return ResultTable(_RESULT_COLUMNS, rows)
