"""Tokenizer: KQL text -> tokens with their character offsets.

Literals whose bodies are not KQL tokens (``datetime(2024-01-01 10:00)``, ``guid(...)``,
``dynamic({...})``, ``timespan(1.02:03:04)``) are captured raw here, so the parser never
sees dates split into numbers and minus signs.
"""

import re
from dataclasses import dataclass
from enum import Enum

from ._errors import KqlError


class Kind(Enum):
    IDENT = "identifier"
    NUMBER = "number"
    TIMESPAN = "timespan"
    STRING = "string"
    RAW_LITERAL = "literal"  # text: its Kusto type; value: the raw text between the parentheses
    SYMBOL = "symbol"
    END = "end of query"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    position: int
    value: object = None  # decoded literal: str, int, float, timespan microseconds


# Longest first, so "==" wins over "=" and ".." over ".".
_SYMBOLS = (
    "==",
    "!=",
    "<>",
    "<=",
    ">=",
    "=~",
    "!~",
    "..",
    "|",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    ";",
    ":",
    "!",
    "~",
)

# Literal spellings whose body is captured raw -> the Kusto type of the literal.
_RAW_LITERAL_TYPES = {
    "datetime": "datetime",
    "date": "datetime",
    "timespan": "timespan",
    "time": "timespan",
    "guid": "guid",
    "uuid": "guid",
    "dynamic": "dynamic",
}

# Microseconds per unit; DuckDB intervals have microsecond resolution, so ticks round down.
TIMESPAN_UNITS: dict[str, float] = {
    "d": 86_400e6,
    "day": 86_400e6,
    "days": 86_400e6,
    "h": 3_600e6,
    "hr": 3_600e6,
    "hrs": 3_600e6,
    "hour": 3_600e6,
    "hours": 3_600e6,
    "m": 60e6,
    "min": 60e6,
    "minute": 60e6,
    "minutes": 60e6,
    "s": 1e6,
    "sec": 1e6,
    "second": 1e6,
    "seconds": 1e6,
    "ms": 1e3,
    "milli": 1e3,
    "millis": 1e3,
    "millisecond": 1e3,
    "milliseconds": 1e3,
    "microsecond": 1.0,
    "microseconds": 1.0,
    "tick": 0.1,
    "ticks": 0.1,
}

# "1..5" is a range, not the real 1. followed by .5: a dot before another dot ends the number.
_NUMBER = re.compile(r"(\d+(?:\.(?!\.)\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)([A-Za-z]*)")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one END token."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
        elif char in "'\"" or (char in "@hH" and text[i + 1 : i + 2] in ("'", '"')):
            i = _string(text, i, tokens)
        elif char.isdigit() or (char == "." and text[i + 1 : i + 2].isdigit()):
            i = _number(text, i, tokens)
        elif match := _IDENT.match(text, i):
            i = _identifier(text, match, tokens)
        elif char == "!" and (match := _IDENT.match(text, i + 1)):
            # Negated string operators are one word in KQL: !has, !contains, !in, !between.
            tokens.append(Token(Kind.IDENT, "!" + match.group(), i))
            i = match.end()
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if symbol is None:
                raise KqlError(f"unexpected character {char!r}", i)
            tokens.append(Token(Kind.SYMBOL, symbol, i))
            i += len(symbol)
    tokens.append(Token(Kind.END, "", len(text)))
    return tokens


def _string(text: str, start: int, tokens: list[Token]) -> int:
    i = start
    verbatim = text[i] == "@"
    if text[i] in "@hH":  # h'..' hides the literal from logs in Kusto; same value here
        i += 1
    quote = text[i]
    i += 1
    chars: list[str] = []
    while True:
        if i >= len(text):
            raise KqlError("unterminated string literal", start)
        char = text[i]
        if char == quote:
            if verbatim and text[i + 1 : i + 2] == quote:  # @'it''s'
                chars.append(quote)
                i += 2
                continue
            break
        if char == "\\" and not verbatim:
            escaped = text[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise KqlError(f"invalid escape sequence '\\{escaped}' in string literal", i)
            chars.append(_ESCAPES[escaped])
            i += 2
            continue
        chars.append(char)
        i += 1
    tokens.append(Token(Kind.STRING, text[start : i + 1], start, "".join(chars)))
    return i + 1


def _number(text: str, start: int, tokens: list[Token]) -> int:
    match = _NUMBER.match(text, start)
    assert match is not None  # the caller saw a digit
    digits, suffix = match.groups()
    if suffix:
        if suffix.lower() not in TIMESPAN_UNITS:
            raise KqlError(f"invalid number literal {match.group()!r}", start)
        micros = round(float(digits) * TIMESPAN_UNITS[suffix.lower()])
        tokens.append(Token(Kind.TIMESPAN, match.group(), start, micros))
    elif any(c in digits for c in ".eE"):
        tokens.append(Token(Kind.NUMBER, digits, start, float(digits)))
    else:
        tokens.append(Token(Kind.NUMBER, digits, start, int(digits)))
    return match.end()


def _identifier(text: str, match: re.Match[str], tokens: list[Token]) -> int:
    word, start, end = match.group(), match.start(), match.end()
    if word.lower() in _RAW_LITERAL_TYPES and text.startswith("(", end):
        close = _matching_paren(text, end, start)
        kusto_type = _RAW_LITERAL_TYPES[word.lower()]
        tokens.append(Token(Kind.RAW_LITERAL, kusto_type, start, text[end + 1 : close].strip()))
        return close + 1
    tokens.append(Token(Kind.IDENT, word, start))
    return end


def _matching_paren(text: str, open_at: int, literal_start: int) -> int:
    depth = 0
    quote: str | None = None
    for i in range(open_at, len(text)):
        char = text[i]
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    raise KqlError("unbalanced parenthesis in literal", literal_start)
