"""Bodies of KQL's typed literals: ``datetime(...)``, ``timespan(...)``, ``guid(...)``,
``dynamic(...)`` -> Python values the SQL generator can render."""

import json
import re
import uuid
from datetime import UTC, datetime

from ._errors import KqlError
from ._lexer import TIMESPAN_UNITS, Kind, Token, tokenize

_JSON_WORDS: dict[str, object] = {"true": True, "false": False, "null": None}

_TIMESPAN_CLOCK = re.compile(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?")
_TIMESPAN_NUMBER = re.compile(r"(-)?(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
_FRACTION = re.compile(r"\.(\d+)")


def _unquoted(body: str) -> str:
    """``datetime("2024-01-01")`` is also valid KQL."""
    text = body.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


def parse_datetime(body: str, position: int) -> datetime | None:
    """``2024-01-01``, ``2024-01-01 10:00``, ``2024-01-01T10:00:00.1234567Z``, offsets -> UTC."""
    if body.lower() == "null":
        return None
    text = _unquoted(body).replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Kusto keeps 100 ns ticks; Python and DuckDB stop at microseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise KqlError(f"invalid datetime literal 'datetime({body})'", position) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_timespan(body: str, position: int) -> int | None:
    """``1d``, ``1.5h``, ``02:03:04``, ``1.02:03:04.5`` -> microseconds."""
    text = _unquoted(body)
    if text.lower() == "null":
        return None
    if match := _TIMESPAN_CLOCK.fullmatch(text):
        sign, days, hours, minutes, seconds, fraction = match.groups()
        micros = (
            (int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds or 0))
            * 1_000_000
        ) + int((fraction or "0")[:6].ljust(6, "0"))
        return -micros if sign else micros
    if match := _TIMESPAN_NUMBER.fullmatch(text):
        sign, number, unit = match.groups()
        factor = TIMESPAN_UNITS.get(unit.lower() or "d")  # a bare number counts days
        if factor is not None:
            micros = round(float(number) * factor)
            return -micros if sign else micros
    raise KqlError(f"invalid timespan literal 'timespan({body})'", position)


def parse_guid(body: str, position: int) -> str | None:
    if body.lower() == "null":
        return None
    try:
        return str(uuid.UUID(_unquoted(body)))
    except ValueError:
        raise KqlError(f"invalid guid literal 'guid({body})'", position) from None


def parse_dynamic(body: str, position: int) -> str | None:
    """Returns canonical JSON text. Kusto's dynamic literals are JSON that may also use
    single-quoted strings and unquoted keys: ``dynamic(['a', 'b'])``, ``dynamic({a: 1})``."""
    if body.lower() == "null":
        return None
    try:
        tokens = tokenize(body)
        value, end = _json_value(tokens, 0)
        if tokens[end].kind is not Kind.END:
            raise ValueError(tokens[end].text)
    except (ValueError, IndexError, KqlError):
        raise KqlError(f"invalid dynamic literal 'dynamic({body})'", position) from None
    return json.dumps(value, separators=(",", ":"))


def _json_value(tokens: list[Token], index: int) -> tuple[object, int]:
    token = tokens[index]
    if token.kind in (Kind.STRING, Kind.NUMBER):
        return token.value, index + 1
    if token.kind is Kind.SYMBOL and token.text == "-" and tokens[index + 1].kind is Kind.NUMBER:
        return -tokens[index + 1].value, index + 2  # type: ignore[operator]
    if token.kind is Kind.IDENT and token.text in _JSON_WORDS:
        return _JSON_WORDS[token.text], index + 1
    if token.text == "[":
        items: list[object] = []
        index += 1
        while tokens[index].text != "]":
            item, index = _json_value(tokens, index)
            items.append(item)
            index = _after_item(tokens, index, "]")
        return items, index + 1
    if token.text == "{":
        members: dict[str, object] = {}
        index += 1
        while tokens[index].text != "}":
            key = tokens[index]
            if key.kind not in (Kind.STRING, Kind.IDENT) or tokens[index + 1].text != ":":
                raise ValueError(key.text)
            member, index = _json_value(tokens, index + 2)
            members[str(key.value if key.kind is Kind.STRING else key.text)] = member
            index = _after_item(tokens, index, "}")
        return members, index + 1
    raise ValueError(token.text)


def _after_item(tokens: list[Token], index: int, closing: str) -> int:
    if tokens[index].text == ",":
        return index + 1
    if tokens[index].text != closing:
        raise ValueError(tokens[index].text)
    return index
