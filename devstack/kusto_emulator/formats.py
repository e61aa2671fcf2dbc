"""Turn a data file of one Kusto ingestion format into a SQL SELECT over the table's columns.

Every format is read by a vectorised reader (DuckDB's JSON and CSV readers, Parquet, pyarrow
for ORC, polars for Avro); the mapping becomes one SQL expression per table column, so no
Python runs per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.orc
import pyarrow.parquet

from devstack.kusto_emulator import avro
from devstack.kusto_emulator.kusto_types import text_to_type_sql, value_to_type_sql
from devstack.kusto_emulator.store import literal, quote

_CSV_DELIMITERS = {"csv": ",", "tsv": "\t", "tsve": "\t", "psv": "|", "scsv": ";", "sohsv": "\x01"}
_JSON_FORMATS = {"json", "multijson", "singlejson"}
_AVRO_FORMATS = {"avro", "apacheavro"}
_COLUMNAR_FORMATS = {*_AVRO_FORMATS, "parquet", "orc"}
SUPPORTED_FORMATS = frozenset({*_CSV_DELIMITERS, *_JSON_FORMATS, *_COLUMNAR_FORMATS, "txt"})
_ARROW_SOURCE = "__ingest_source"
# A null marker no CSV contains: Kusto keeps empty CSV fields as empty strings.
_NO_NULL = "\x00<null>\x00"


class IngestionFailure(Exception):
    """A blob Kusto would refuse: the error code and whether a retry could succeed."""

    def __init__(self, error_code: str, details: str, permanent: bool = True) -> None:
        super().__init__(details)
        self.error_code = error_code
        self.details = details
        self.permanent = permanent


@dataclass(frozen=True)
class MappedColumn:
    """One mapping entry: the target column and where its value comes from."""

    column: str
    path: str | None = None
    ordinal: int | None = None
    const_value: str | None = None
    transform: str | None = None


@dataclass
class Source:
    """A SELECT producing the table's user columns, plus Arrow tables it reads by name."""

    select_sql: str
    arrow_tables: dict[str, pa.Table] = field(default_factory=dict)


def parse_mapping(mapping_json: str | list[Any]) -> list[MappedColumn]:
    """Parse a Kusto ingestion mapping, in its current and legacy shapes, for any kind."""
    try:
        entries = orjson.loads(mapping_json) if isinstance(mapping_json, str) else mapping_json
    except orjson.JSONDecodeError as error:
        raise IngestionFailure(
            "BadRequest_InvalidMapping", f"mapping is not JSON: {error}"
        ) from None
    if not isinstance(entries, list):
        raise IngestionFailure("BadRequest_InvalidMapping", "mapping must be a JSON array")
    return [_mapped_column(entry) for entry in entries]


def _mapped_column(entry: Any) -> MappedColumn:
    if not isinstance(entry, dict):
        raise IngestionFailure(
            "BadRequest_InvalidMapping", f"mapping entry is not an object: {entry}"
        )
    lowered = {key.lower(): value for key, value in entry.items()}
    properties = lowered.get("properties") or {}
    merged = {**lowered, **{key.lower(): value for key, value in properties.items()}}
    name = merged.get("column") or merged.get("name")
    if not name:
        raise IngestionFailure(
            "BadRequest_InvalidMapping", f"mapping entry without column: {entry}"
        )
    ordinal = merged.get("ordinal")
    try:
        ordinal = int(ordinal) if ordinal not in (None, "") else None
    except (TypeError, ValueError):
        raise IngestionFailure(
            "BadRequest_InvalidMapping", f"ordinal of column '{name}' is not a number: {ordinal}"
        ) from None
    transform = merged.get("transform") or None
    if transform is not None and transform.lower() not in _TRANSFORMS and transform != "None":
        raise IngestionFailure(
            "BadRequest_InvalidMapping",
            f"transform '{transform}' of column '{name}' is not supported by the emulator",
        )
    return MappedColumn(
        column=name,
        path=merged.get("path") or (f"$.{merged['field']}" if merged.get("field") else None),
        ordinal=ordinal,
        const_value=merged.get("constvalue"),
        transform=None if transform in (None, "None") else transform.lower(),
    )


def default_mapping(format_name: str, columns: list[tuple[str, str]]) -> list[MappedColumn]:
    """Kusto's identity mapping: by position for CSV-like formats, by name otherwise."""
    if format_name in _CSV_DELIMITERS or format_name == "txt":
        return [MappedColumn(column=name, ordinal=index) for index, (name, _) in enumerate(columns)]
    return [MappedColumn(column=name, path=f"$.{name}") for name, _ in columns]


def build_source(
    path: Path,
    format_name: str,
    mapping: list[MappedColumn],
    columns: list[tuple[str, str]],
    ignore_first_record: bool,
) -> Source:
    """The SELECT that reads `path` as `format_name` into the table's columns, in order."""
    format_name = format_name.lower()
    by_column = {entry.column: entry for entry in mapping}
    unknown = set(by_column) - {name for name, _ in columns}
    if unknown:
        raise IngestionFailure(
            "BadRequest_InconsistentMapping",
            f"mapping names columns the table does not have: {sorted(unknown)}",
        )
    compressed = _is_gzip(path)
    if format_name in _JSON_FORMATS:
        return _json_source(path, format_name, by_column, columns, compressed)
    if format_name in _CSV_DELIMITERS or format_name == "txt":
        return _csv_source(path, format_name, by_column, columns, compressed, ignore_first_record)
    if format_name in _AVRO_FORMATS:
        return _avro_source(path, format_name, by_column, columns)
    if format_name in _COLUMNAR_FORMATS:
        return _columnar_source(path, format_name, by_column, columns)
    raise IngestionFailure(
        "BadRequest_FormatNotSupported", f"format '{format_name}' is not supported"
    )


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(2) == b"\x1f\x8b"


def _const(kind: str, entry: MappedColumn) -> str:
    value = "NULL" if entry.const_value is None else literal(str(entry.const_value))
    return text_to_type_sql(kind, f"CAST({value} AS VARCHAR)")


# Unix-time transforms: the factor from the source unit to microseconds.
_TRANSFORMS = {
    "datetimefromunixseconds": 1_000_000,
    "datetimefromunixmilliseconds": 1_000,
    "datetimefromunixmicroseconds": 1,
    "datetimefromunixnanoseconds": 0.001,
}


def _from_text(kind: str, text: str, entry: MappedColumn) -> str:
    """A mapped text value in the column's type, after the mapping's transform."""
    if entry.transform is None:
        return text_to_type_sql(kind, text)
    micros = f"CAST(round(TRY_CAST({text} AS DOUBLE) * {_TRANSFORMS[entry.transform]}) AS BIGINT)"
    return text_to_type_sql(kind, f"CAST(make_timestamp({micros}) AS VARCHAR)")


def _select(columns: list[tuple[str, str]], expressions: list[str], from_sql: str) -> str:
    selected = ", ".join(
        f"{expression} AS {quote(name)}"
        for (name, _), expression in zip(columns, expressions, strict=True)
    )
    return f"SELECT {selected} FROM {from_sql}"


_BRACKET_KEY = re.compile(r"\[\s*'((?:[^']|'')*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


def json_path_to_duckdb(path: str) -> str:
    """Kusto JSON paths (`$.a.b`, `$['a b']`, `$.a[0]`) in DuckDB's JSONPath dialect."""

    def dotted(match: re.Match[str]) -> str:
        key = match.group(1) if match.group(1) is not None else match.group(2)
        return '."' + key.replace("''", "'").replace('"', '\\"') + '"'

    return _BRACKET_KEY.sub(dotted, path.strip())


def _json_source(
    path: Path,
    format_name: str,
    by_column: dict[str, MappedColumn],
    columns: list[tuple[str, str]],
    compressed: bool,
) -> Source:
    # Kusto skips malformed lines of `json`, but fails a malformed `multijson` blob.
    layout = "'newline_delimited', ignore_errors = true" if format_name == "json" else "'auto'"
    reader = (
        f"read_json_objects({literal(str(path))}, format = {layout}, "
        f"compression = {literal('gzip' if compressed else 'none')}, "
        "maximum_object_size = 67108864)"
    )
    return Source(_json_select(reader, by_column, columns))


def _json_select(
    records: str, by_column: dict[str, MappedColumn], columns: list[tuple[str, str]]
) -> str:
    """The SELECT mapping JSON records (`records` yields a `json` column) to the columns."""
    # Each record is parsed twice at most: once for all text values, once for all dynamic
    # ones (a path per column would parse it once per column).
    text_paths: list[str] = []
    dynamic_paths: list[str] = []
    expressions = []
    for name, kind in columns:
        entry = by_column.get(name)
        if entry is None:
            expressions.append("NULL")
        elif entry.const_value is not None or entry.path is None:
            expressions.append(_const(kind, entry))
        elif kind == "dynamic":
            dynamic_paths.append(json_path_to_duckdb(entry.path))
            expressions.append(f"__dynamic[{len(dynamic_paths)}]")
        else:
            text_paths.append(json_path_to_duckdb(entry.path))
            expressions.append(_from_text(kind, f"__text[{len(text_paths)}]", entry))
    extracted = ["json"]
    if text_paths:
        extracted.append(f"json_extract_string(json, {_sql_list(text_paths)}) AS __text")
    if dynamic_paths:
        extracted.append(f"json_extract(json, {_sql_list(dynamic_paths)}) AS __dynamic")
    parsed = f"(SELECT {', '.join(extracted)} FROM {records} WHERE json IS NOT NULL)"
    return _select(columns, expressions, parsed)


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(literal(value) for value in values) + "]"


def _csv_source(
    path: Path,
    format_name: str,
    by_column: dict[str, MappedColumn],
    columns: list[tuple[str, str]],
    compressed: bool,
    ignore_first_record: bool,
) -> Source:
    ordinals = [entry.ordinal for entry in by_column.values() if entry.ordinal is not None]
    width = 1 if format_name == "txt" else max([len(columns) - 1, *ordinals]) + 1
    expressions = []
    for name, kind in columns:
        entry = by_column.get(name)
        if entry is None:
            expressions.append("NULL")
        elif entry.const_value is not None or entry.ordinal is None:
            expressions.append(_const(kind, entry))
        else:
            expressions.append(_from_text(kind, f"column{entry.ordinal}", entry))
    field_types = ", ".join(f"'column{index}': 'VARCHAR'" for index in range(width))
    if format_name == "txt":
        # One record per line, the whole line one field: a delimiter and quote no text has.
        dialect = "delim = '\x02', quote = '', escape = ''"
    else:
        dialect = f"delim = {literal(_CSV_DELIMITERS[format_name])}, quote = '\"', escape = '\"'"
    reader = (
        f"read_csv({literal(str(path))}, header = false, auto_detect = false, "
        f"columns = {{{field_types}}}, {dialect}, skip = {1 if ignore_first_record else 0}, "
        f"null_padding = true, nullstr = {literal(_NO_NULL)}, "
        f"compression = {literal('gzip' if compressed else 'none')})"
    )
    return Source(_select(columns, expressions, reader))


def _read_columnar(path: Path, format_name: str) -> pa.Table:
    if format_name == "orc":
        return pyarrow.orc.read_table(str(path))
    if format_name == "parquet":
        return pyarrow.parquet.read_table(str(path))
    return avro.read_arrow(path)


def _avro_source(
    path: Path,
    format_name: str,
    by_column: dict[str, MappedColumn],
    columns: list[tuple[str, str]],
) -> Source:
    try:
        schema = avro.writer_schema(path)
    except Exception as error:  # noqa: BLE001 - any reader error means the blob is not Avro
        raise IngestionFailure(
            "BadRequest_InvalidBlob", f"the blob is not valid {format_name}: {error}"
        ) from None
    if avro.arrow_readable(schema):
        return _columnar_source(path, format_name, by_column, columns)
    try:
        records = avro.read_json_records(path)
    except Exception as error:  # noqa: BLE001 - a corrupt block past the header
        raise IngestionFailure(
            "BadRequest_InvalidBlob", f"the blob is not valid {format_name}: {error}"
        ) from None
    select = _json_select(quote(_ARROW_SOURCE), by_column, columns)
    return Source(select, {_ARROW_SOURCE: records})


def _column_reference(path: str) -> str:
    """`$.a.b` -> `"a"."b"`: columnar formats address top-level columns and struct fields."""
    parts = [part for part in re.split(r"\.(?![^\[]*\])", path.removeprefix("$")) if part]
    keys = []
    for part in parts:
        match = _BRACKET_KEY.fullmatch(part)
        keys.append(part if match is None else (match.group(1) or match.group(2)))
    return ".".join(quote(key) for key in keys)


def _columnar_source(
    path: Path,
    format_name: str,
    by_column: dict[str, MappedColumn],
    columns: list[tuple[str, str]],
) -> Source:
    try:
        table = _read_columnar(path, format_name)
    except Exception as error:  # noqa: BLE001 - any reader error means the blob is not this format
        raise IngestionFailure(
            "BadRequest_InvalidBlob", f"the blob is not valid {format_name}: {error}"
        ) from None
    available = set(table.column_names)
    expressions = []
    for name, kind in columns:
        entry = by_column.get(name)
        if entry is None:
            expressions.append("NULL")
        elif entry.const_value is not None or entry.path is None:
            expressions.append(_const(kind, entry))
        elif entry.path.strip() == "$":
            expressions.append(value_to_type_sql(kind, f"{quote(_ARROW_SOURCE)}"))
        else:
            reference = _column_reference(entry.path)
            top = reference.split(".")[0].strip('"')
            if top not in available:
                expressions.append("NULL")
            elif entry.transform is not None:
                expressions.append(_from_text(kind, f"CAST({reference} AS VARCHAR)", entry))
            else:
                expressions.append(value_to_type_sql(kind, reference))
    return Source(_select(columns, expressions, quote(_ARROW_SOURCE)), {_ARROW_SOURCE: table})
