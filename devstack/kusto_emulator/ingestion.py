"""Ingest one data file into one table as one extent: shared by queued and streaming ingestion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from devstack.kusto_emulator.formats import (
    SUPPORTED_FORMATS,
    IngestionFailure,
    MappedColumn,
    build_source,
    default_mapping,
    parse_mapping,
)
from devstack.kusto_emulator.store import AlreadyTaggedError, EmptyExtentError, KustoStore

# `raw` is one record per blob line in our reading, like txt.
_FORMAT_ALIASES = {"raw": "txt"}


@dataclass
class IngestionRequest:
    """What the client asked for, from a queue message or a streaming request."""

    database: str
    table: str
    format: str = "csv"
    mapping_reference: str | None = None
    inline_mapping: str | None = None
    tags: list[str] = field(default_factory=list)
    ingest_if_not_exists: list[str] = field(default_factory=list)
    ignore_first_record: bool = False


@dataclass(frozen=True)
class IngestionOutcome:
    extent_id: str
    row_count: int


class AlreadyIngested(IngestionFailure):
    """`ingestIfNotExists` found an extent carrying one of the batch's ingest-by tags."""

    def __init__(self, request: IngestionRequest) -> None:
        super().__init__(
            "Skipped_IngestByTagAlreadyExists",
            f"An extent of table '{request.database}.{request.table}' already carries one of "
            f"the ingest-by tags {request.ingest_if_not_exists}; the ingestion was skipped.",
        )


def ingest_file(store: KustoStore, request: IngestionRequest, path: Path) -> IngestionOutcome:
    """Ingest `path` into the request's table, all rows or none.

    Raises IngestionFailure with Kusto's error code when Kusto would refuse the data.
    """
    if not store.has_database(request.database):
        raise IngestionFailure(
            "BadRequest_DatabaseNotExist", f"Database '{request.database}' does not exist."
        )
    try:
        columns = store.columns(request.database, request.table)
    except KeyError:
        raise IngestionFailure(
            "BadRequest_TableNotExist",
            f"Table '{request.table}' does not exist in database '{request.database}'.",
        ) from None
    format_name = _FORMAT_ALIASES.get(request.format.lower(), request.format.lower())
    if format_name not in SUPPORTED_FORMATS:
        raise IngestionFailure(
            "BadRequest_FormatNotSupported", f"Format '{request.format}' is not supported."
        )
    if path.stat().st_size == 0:
        raise IngestionFailure("BadRequest_EmptyBlob", "The blob is empty.")
    # Checked again when the extent is written; here, it spares parsing a skipped blob.
    if request.ingest_if_not_exists and store.has_ingest_by_tag(
        request.database, request.table, request.ingest_if_not_exists
    ):
        raise AlreadyIngested(request)
    mapping = _mapping(store, request, format_name, columns)
    try:
        source = build_source(path, format_name, mapping, columns, request.ignore_first_record)
    except IngestionFailure as failure:
        failure.details = failure.details.replace(str(path), "the blob")
        raise
    try:
        extent_id, row_count = store.append_extent(
            request.database,
            request.table,
            source.select_sql,
            request.tags,
            source.arrow_tables,
            if_not_exists=request.ingest_if_not_exists,
        )
    except AlreadyTaggedError:
        raise AlreadyIngested(request) from None
    except EmptyExtentError:
        raise IngestionFailure(
            "BadRequest_NoRecordsOrWrongFormat",
            f"The blob has no records, or is not {format_name}.",
        ) from None
    except duckdb.Error as error:
        raise _data_failure(format_name, str(error).replace(str(path), "the blob")) from None
    return IngestionOutcome(extent_id, row_count)


def _mapping(
    store: KustoStore,
    request: IngestionRequest,
    format_name: str,
    columns: list[tuple[str, str]],
) -> list[MappedColumn]:
    if request.mapping_reference and request.inline_mapping:
        raise IngestionFailure(
            "BadRequest_DuplicateMapping",
            "Both ingestionMapping and ingestionMappingReference were given.",
        )
    if request.inline_mapping:
        return parse_mapping(request.inline_mapping)
    if request.mapping_reference:
        found = store.mapping(request.database, request.table, request.mapping_reference)
        if found is None:
            raise IngestionFailure(
                "BadRequest_InvalidMappingReference",
                f"Mapping reference '{request.mapping_reference}' of table "
                f"'{request.database}.{request.table}' was not found.",
            )
        return parse_mapping(found[1])
    return default_mapping(format_name, columns)


def _data_failure(format_name: str, error: str) -> IngestionFailure:
    """Kusto's error code for data DuckDB could not read, with where it failed."""
    lines = error.splitlines()
    where = next((line for line in lines if line.startswith("CSV Error on Line")), lines[0])
    counts = next((line for line in lines if line.startswith("Expected Number of Columns")), None)
    if counts is not None:
        return IngestionFailure(
            "Stream_WrongNumberOfFields",
            f"Inconsistent number of fields in the input records: {where}: {counts}",
        )
    if "unterminated quote" in error:
        return IngestionFailure(
            "Stream_ClosingQuoteMissing", f"Invalid {format_name}: closing quote missing: {where}"
        )
    return IngestionFailure(
        "BadRequest_InvalidBlob", f"The blob is not valid {format_name}: {where}"
    )
