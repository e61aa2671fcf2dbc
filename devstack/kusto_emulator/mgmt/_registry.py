"""The command registry: each management command is a pattern and a handler."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.kusto_emulator.azure_storage import StorageResources
from devstack.kusto_emulator.errors import KustoRequestError
from devstack.kusto_emulator.faults import FaultRegistry
from devstack.kusto_emulator.responses import ResultTable
from devstack.kusto_emulator.store import KustoStore

# An entity name: plain, or bracketed and quoted (`['my table']`).
NAME = r"(?:\[\s*'[^']+'\s*\]|\[\s*\"[^\"]+\"\s*\]|[\w.\-]+)"


def unquote_name(name: str) -> str:
    """`['a b']`, `["x"]` or `x` -> the entity name."""
    name = name.strip()
    if name.startswith("["):
        return name[1:-1].strip()[1:-1]
    return name


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets (`['a,b']:string`)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@dataclass
class MgmtContext:
    store: KustoStore
    storage: StorageResources | None
    database: str
    faults: FaultRegistry = field(default_factory=FaultRegistry)


Handler = Callable[[MgmtContext, re.Match[str]], ResultTable]
_COMMANDS: list[tuple[re.Pattern[str], Handler]] = []


def command(pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS.append((re.compile(pattern, re.IGNORECASE | re.DOTALL), handler))
        return handler

    return register


def execute_mgmt(context: MgmtContext, text: str) -> ResultTable:
    text = text.strip().rstrip(";").strip()
    for pattern, handler in _COMMANDS:
        match = pattern.fullmatch(text)
        if match:
            return handler(context, match)
    first_line = text.splitlines()[0] if text else ""
    raise KustoRequestError.syntax(
        f"Syntax error: the emulator does not know the command '{first_line[:200]}'"
    )
