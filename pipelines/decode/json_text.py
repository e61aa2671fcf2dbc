"""JSON records sent to Kusto as the bytes they arrived in, one record a line.

The whole run is validated at once (``pyarrow.json`` on the joined lines, plus one UTF-8
decode), which is about 4x faster than parsing record by record in Python; only a run that
fails is looked at record by record, to find the bad ones. A record is good when it is one
JSON object in valid UTF-8, exactly what pyarrow accepts as one row: the per-record path
asks orjson first (fast) and, for what orjson rejects, pyarrow alone, so both paths agree.

A line break (``\n`` or ``\r``) inside a valid JSON text can only be whitespace between
tokens (raw control characters in strings are invalid), so a pretty-printed record becomes
one line by replacing its line breaks with spaces: no re-serialization, numbers and key
order stay as they were.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from pipelines.decode.base import ChunkAssembler, is_utf8, offsets_of, values_of
from pipelines.records import Chunk, DeadLetter, KafkaRecord, LineFraming

LINES = LineFraming()
# Parse every field and keep none: a pure syntax check, with no column types to conflict
# between records ({"a": 1} then {"a": "x"} is fine for Kusto, and so for us).
_SYNTAX_ONLY = pa_json.ParseOptions(
    explicit_schema=pa.schema([]), unexpected_field_behavior="ignore"
)
# pyarrow parses blocks in parallel; a record larger than a block is retried as one block
_BLOCK_BYTES = 1 << 20
# A run that fails is re-checked in 1/16ths, and each failing part again, down to blocks of
# 512 records, which are looked at record by record: a few poison records cost little.
_SUBDIVIDE = 16
_SMALLEST_BLOCK = 512


def check_json_lines(values: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    """Payloads for ``values`` (compacted where needed) and the reason of each bad index.

    In the common case (all good, none multi-line) ``values`` itself is returned.
    """
    if values and _all_good(values):
        return values, {}
    payloads = list(values)
    problems: dict[int, str] = {}
    _find_bad(values, 0, payloads, problems)
    return payloads, problems


def _find_bad(
    values: list[bytes], start: int, payloads: list[bytes], problems: dict[int, str]
) -> None:
    """Narrow a failed run down: sub-blocks that pass are done, small ones go record by record."""
    if len(values) <= _SMALLEST_BLOCK:
        _check_each(values, start, payloads, problems)
        return
    size = max(_SMALLEST_BLOCK, len(values) // _SUBDIVIDE)
    for offset in range(0, len(values), size):
        block = values[offset : offset + size]
        if not _all_good(block):
            _find_bad(block, start + offset, payloads, problems)


def _check_each(
    values: list[bytes], start: int, payloads: list[bytes], problems: dict[int, str]
) -> None:
    for i, value in enumerate(values, start):
        reason = json_object_problem(value)
        if reason is not None:
            problems[i] = reason
        elif b"\n" in value or b"\r" in value:
            payloads[i] = one_line(value)


def one_line(json_text: bytes) -> bytes:
    """Valid JSON text on one line: its line breaks can only be whitespace between tokens."""
    return json_text.replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")


def json_object_problem(value: bytes) -> str | None:
    """Why ``value`` is not one JSON object in UTF-8, or None if it is one."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        if _pyarrow_accepts(value):
            return None
        return _describe(value, error)
    if not isinstance(parsed, dict):
        return f"not a JSON object: the record is a JSON {json_kind(parsed)}"
    return None


def _all_good(values: list[bytes]) -> bool:
    joined = b"\n".join(values)
    lines = len(values)
    if joined.count(b"\n") != lines - 1 or b"\r" in joined:  # a record spans several lines
        return False
    if not joined.startswith(b"{") or joined.count(b"\n{") != lines - 1:
        return False  # some line does not open an object: see _pyarrow_rows
    return _pyarrow_rows(joined) == lines and is_utf8(joined)


def _pyarrow_accepts(value: bytes) -> bool:
    return (
        value.startswith(b"{")
        and b"\n" not in value
        and _pyarrow_rows(value) == 1
        and is_utf8(value)
    )


def _pyarrow_rows(lines: bytes, block_bytes: int = _BLOCK_BYTES) -> int:
    """How many JSON objects pyarrow reads from ``lines``; -1 if it fails.

    Every line of ``lines`` must start with ``{``: pyarrow 26 crashes the process
    (segfault) on a block whose first value is ``null``, and blocks start at line starts.
    """
    options = pa_json.ReadOptions(block_size=block_bytes)
    try:
        table = pa_json.read_json(
            io.BytesIO(lines), read_options=options, parse_options=_SYNTAX_ONLY
        )
    except pa.ArrowInvalid as error:
        if "straddl" in str(error) and block_bytes <= len(lines):  # a record over one block
            return _pyarrow_rows(lines, len(lines) + 1)
        return -1
    rows: int = table.num_rows
    return rows


def _describe(value: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start}"
    if not value.strip():
        return "empty record: no JSON value"
    return f"invalid JSON at byte {_byte_position(value, error.pos)}: {error.msg}"


def _byte_position(value: bytes, char_position: int) -> int:
    """orjson reports character positions; users look at bytes."""
    return len(value.decode("utf-8")[:char_position].encode("utf-8"))


def json_kind(parsed: object) -> str:
    if isinstance(parsed, list):
        return "array"
    if isinstance(parsed, str):
        return "string"
    if parsed is None:
        return "null"
    if isinstance(parsed, bool):
        return "boolean"
    return "number"


class JsonLinesDecoder:
    """Schemaless JSON (or JSON text in plain strings): the value bytes, one per line."""

    def __init__(self, format: str) -> None:
        self._format = format

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        values = values_of(records)
        rows, present = out.without_tombstones(records, values)
        payloads, problems = check_json_lines(present)
        out.add_checked(LINES, records, offsets_of(records), rows, payloads, problems)
        return out.result()
