"""JSON records sent to Kusto as the bytes they arrived in, one record a line.

A record is good when it is one JSON object (RFC 8259, as msgspec reads it) in valid UTF-8.
A run is checked at once: its records joined into one JSON array that msgspec scans without
building a value (``msgspec.Raw``), plus one UTF-8 decode: ~6x less CPU than pyarrow's
reader, ~3x less than orjson record by record. Only a run that fails is looked at record by
record, with the same parser, so both paths judge a record alike.

A line break (``\n`` or ``\r``) inside a valid JSON text can only be whitespace between
tokens (raw control characters in strings are invalid), so a pretty-printed record becomes
one line by replacing its line breaks with spaces: no re-serialization, numbers and key
order stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter

import msgspec

from pipelines.decode.base import ChunkAssembler, is_utf8, offsets_of, values_of
from pipelines.records import Chunk, DeadLetter, KafkaRecord, LineFraming

LINES = LineFraming()
# Raw: each value's syntax is checked and its bytes located, nothing is built.
_ONE_VALUE = msgspec.json.Decoder(msgspec.Raw)
_VALUES = msgspec.json.Decoder(list[msgspec.Raw])
_FIRST_BYTE = itemgetter(0)
# A run that fails is re-checked in 1/16ths, and each failing part again, down to blocks of
# 512 records, which are looked at record by record: a few poison records cost little.
_SUBDIVIDE = 16
_SMALLEST_BLOCK = 512
_BYTE_POSITION = re.compile(r"\s*\(byte (\d+)\)$")
# msgspec's nesting limit is the interpreter's recursion limit less the caller's stack depth:
# a record too deep where it is checked is judged again on a thread of its own, so its
# verdict never depends on where it was decoded (a batch split decodes it again elsewhere).
_SHALLOW_STACK = ThreadPoolExecutor(1, thread_name_prefix="json-nesting")
# What a JSON text is, by its first byte (anything else valid is a number).
_KINDS = {
    ord("["): "array",
    ord('"'): "string",
    ord("n"): "null",
    ord("t"): "boolean",
    ord("f"): "boolean",
}


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
    bad_utf8 = _utf8_problem(value)
    if bad_utf8 is not None:
        return bad_utf8
    if not value.strip():
        return "empty record: no JSON value"
    try:
        _check_syntax(value)
    except msgspec.DecodeError as error:
        return _describe(value, error)
    except RecursionError:
        return "JSON nested too deeply: about 1 000 levels or more"
    first = value.lstrip()[0]
    if first != ord("{"):
        return f"not a JSON object: the record is a JSON {_KINDS.get(first, 'number')}"
    return None


def _check_syntax(value: bytes) -> None:
    """Raise msgspec.DecodeError unless ``value`` is one JSON text; RecursionError only when
    it is too deep even on a thread of its own."""
    try:
        _ONE_VALUE.decode(value)
    except RecursionError:
        _SHALLOW_STACK.submit(_ONE_VALUE.decode, value).result()


def _all_good(values: list[bytes]) -> bool:
    joined = b",".join(values)
    if b"\n" in joined or b"\r" in joined or not is_utf8(joined):
        return False  # a record spans several lines, or some bytes are not UTF-8
    try:
        if bytes(map(_FIRST_BYTE, values)).count(b"{") != len(values):
            return False  # not an object, or leading whitespace: see record by record
        parsed = _VALUES.decode(b"[" + joined + b"]")
    except (IndexError, msgspec.DecodeError, RecursionError):  # empty; bad syntax; too deep
        return False
    # Each record must be one whole value: a string left open in one record could swallow
    # the comma after it, and a comma inside the next could stand in for it.
    return [*map(len, parsed)] == [*map(len, values)]


def _utf8_problem(value: bytes) -> str | None:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start}"
    return None


def _describe(value: bytes, error: msgspec.DecodeError) -> str:
    """msgspec names byte positions, except of a truncated text: that ends at its length."""
    message = str(error).removeprefix("JSON is malformed: ")
    found = _BYTE_POSITION.search(message)
    if found is None:
        return f"invalid JSON at byte {len(value)}: {message}"
    return f"invalid JSON at byte {found.group(1)}: {message[: found.start()]}"


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
