"""Kafka Connect JsonConverter envelopes (``schemas.enable=true``): the payload goes to Kusto.

With ``schemas.enable=true`` (Connect's default) JsonConverter writes
``{"schema": {...}, "payload": {...}}``. The reference sink ingests the payload alone, so
Kusto mappings written for it keep working here. Reaching the payload means parsing each
record (Python's json scanner, a few hundred thousand records/s): the one JSON path that
must. The payload's bytes are cut out, not re-encoded. A null
payload is Connect's way to write a tombstone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pipelines.decode.base import ChunkAssembler, offsets_of, values_of
from pipelines.decode.json_text import LINES, check_json_lines, json_kind, one_line
from pipelines.records import Chunk, DeadLetter, KafkaRecord

_ENVELOPE_KEYS = {"schema", "payload"}
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCANNER = json.JSONDecoder()


class NotAnEnvelope(ValueError):
    """The record is not a JsonConverter envelope holding a JSON object."""


def envelope_payload(value: bytes) -> bytes | None:
    """The payload of an envelope, its bytes as they arrived, on one line.

    None for a null payload (a tombstone). The payload is cut out of the record rather than
    re-encoded, so numbers keep every digit (a float parser would round 64-bit-plus ints).
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise NotAnEnvelope(f"invalid UTF-8 at byte {bad.start}") from None
    try:
        fields = _top_level_fields(text)
    except json.JSONDecodeError as error:
        position = len(text[: error.pos].encode("utf-8"))
        raise NotAnEnvelope(f"invalid JSON at byte {position}: {error.msg}") from None
    if fields.keys() != _ENVELOPE_KEYS:
        raise NotAnEnvelope(
            "not a Kafka Connect JSON envelope: expected exactly the fields schema and payload "
            "(value.converter.schemas.enable=true)"
        )
    payload, start, end = fields["payload"]
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise NotAnEnvelope(f"the envelope's payload is a JSON {json_kind(payload)}, not an object")
    return one_line(text[start:end].encode("utf-8"))


def _top_level_fields(text: str) -> dict[str, tuple[Any, int, int]]:
    """Each top-level field of a JSON object: (parsed value, start, end) in ``text``."""
    fields: dict[str, tuple[Any, int, int]] = {}
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise json.JSONDecodeError("expected a JSON object", text, i)
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return _end(text, i + 1, fields)
    while True:
        key, i = _SCANNER.raw_decode(text, i)
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a field name", text, i)
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise json.JSONDecodeError("expected ':'", text, i)
        start = _skip(text, i + 1)
        parsed, end = _SCANNER.raw_decode(text, start)
        fields[key] = (parsed, start, end)
        i = _skip(text, end)
        if text.startswith("}", i):
            return _end(text, i + 1, fields)
        if not text.startswith(",", i):
            raise json.JSONDecodeError("expected ',' or '}'", text, i)
        i = _skip(text, i + 1)


def _end(
    text: str, i: int, fields: dict[str, tuple[Any, int, int]]
) -> dict[str, tuple[Any, int, int]]:
    if _skip(text, i) != len(text):
        raise json.JSONDecodeError("extra data after the JSON object", text, i)
    return fields


def _skip(text: str, i: int) -> int:
    match = _WHITESPACE.match(text, i)
    assert match is not None  # the pattern matches the empty string
    return match.end()


class ConnectEnvelopeDecoder:
    """JsonConverter envelopes → their payloads, one JSON object a line.

    Records of one topic nearly always share their schema, so their bytes share the prefix
    ``{"schema":...,"payload":``. Records that start with the first record's prefix and end
    in ``}`` have their payloads cut out with slices and checked at once like plain JSON
    lines; a candidate that passes is one JSON object, so the record is exactly a valid
    envelope around it. Only the rest are scanned one by one.
    """

    def __init__(self, format: str) -> None:
        self._format = format

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        offsets = offsets_of(records)
        rows, values = out.without_tombstones(records, values_of(records))
        payloads, slow = _cut_payloads(values)
        if not slow and isinstance(rows, range):  # the common case: nothing left to look at
            out.extend(LINES, offsets, payloads)  # type: ignore[arg-type]
            return out.result()
        problems: dict[int, str] = {}
        for position in slow:
            try:
                payloads[position] = envelope_payload(values[position])
            except NotAnEnvelope as problem:
                payloads[position] = None
                problems[position] = str(problem)
        good = [p for p, payload in enumerate(payloads) if payload is not None]
        good_payloads = [payloads[p] for p in good]
        out.extend(LINES, [offsets[rows[p]] for p in good], good_payloads)  # type: ignore[arg-type]
        for position, payload in enumerate(payloads):
            if position in problems:
                out.reject(records[rows[position]], problems[position])
            elif payload is None:
                out.tombstone(records[rows[position]])
        return out.result()


def _cut_payloads(values: list[bytes]) -> tuple[list[bytes | None], set[int]]:
    """Payloads cut from the records sharing the first one's prefix; positions left to scan."""
    prefix = _payload_prefix(values[0]) if values else None
    if prefix is None:
        return [None] * len(values), set(range(len(values)))
    cut = len(prefix)
    fast = [p for p, v in enumerate(values) if v.startswith(prefix) and v.endswith(b"}")]
    checked, failed = check_json_lines([values[p][cut:-1].rstrip(b" \t\r\n") for p in fast])
    if len(fast) == len(values):
        payloads: list[bytes | None] = list(checked)
        slow = set()
    else:
        payloads = [None] * len(values)
        for position, payload in zip(fast, checked, strict=True):
            payloads[position] = payload
        slow = set(range(len(values))).difference(fast)
    slow.update(fast[k] for k in failed)
    return payloads, slow


def _payload_prefix(value: bytes) -> bytes | None:
    """The bytes up to where the payload starts, if ``value`` is an envelope."""
    try:
        fields = _top_level_fields(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if fields.keys() != _ENVELOPE_KEYS:
        return None
    text = value.decode("utf-8")
    return text[: fields["payload"][1]].encode("utf-8")
