"""Java ``.properties`` files, read the way ``java.util.Properties.load`` reads them."""

from __future__ import annotations


def parse_properties(text: str) -> dict[str, str]:
    """A Java ``.properties`` text as a dict (comments, continuations and escapes handled).

    Raises:
        ValueError: on a malformed ``\\uXXXX`` escape, as Java's loader does.
    """
    lines = iter(text.splitlines())
    result: dict[str, str] = {}
    for first in lines:
        line = first.lstrip()
        if not line or line[0] in "#!":
            continue
        while _continues(line):
            line = line[:-1] + next(lines, "").lstrip()
        key, value = _split_entry(line)
        result[key] = value
    return result


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_entry(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line) and line[index] not in "=: \t\f":
        index += 2 if line[index] == "\\" else 1
    key, rest = line[:index], line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest)


def _unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following == "u":
                digits = text[index + 2 : index + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise ValueError(f"malformed \\u escape: \\u{digits}")
                out.append(chr(int(digits, 16)))
                index += 6
                continue
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(following, following))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
