"""``${env:NAME}`` references in settings, and secrets that remember them.

Values may hold ``${env:NAME}`` (Kafka Connect's EnvVarConfigProvider syntax) or plain
``${NAME}`` anywhere. They are resolved once, before validation, and a secret keeps the
text it was resolved from so :func:`~pipelines.config.to_yaml` can write the reference back
instead of the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

from pipelines.errors import Problem

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Resolved(str):
    """A string that came from a template with references; ``template`` is the original."""

    template: str

    def __new__(cls, value: str, template: str) -> Resolved:
        text = super().__new__(cls, value)
        text.template = template
        return text


class Secret(SecretStr):
    """A secret that remembers the ``${env:...}`` text it came from, if any."""

    def __init__(self, value: str, reference: str | None = None) -> None:
        super().__init__(value)
        self.reference = reference


def _to_secret(value: Any) -> Any:
    if isinstance(value, Secret):
        return value
    if isinstance(value, Resolved):
        return Secret(str(value), value.template)
    if isinstance(value, SecretStr):
        return Secret(value.get_secret_value())
    if isinstance(value, str):
        return Secret(value)
    return value  # let SecretStr's own validation name the wrong type


SecretText = Annotated[SecretStr, BeforeValidator(_to_secret)]
"""A secret setting: resolved like any value, but remembering its reference."""


def _resolve_text(
    text: str, setting: str, environ: Mapping[str, str], problems: list[Problem]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        inner = match.group(1)
        provider, _, name = inner.partition(":") if ":" in inner else ("env", "", inner)
        if provider != "env":
            problems.append(
                Problem(
                    setting,
                    f"config provider '{provider}' in {match.group(0)} is not supported; "
                    "use ${env:NAME}",
                )
            )
            return match.group(0)
        if not _ENV_NAME.fullmatch(name):
            problems.append(Problem(setting, f"{match.group(0)} is not a valid variable name"))
            return match.group(0)
        if name not in environ:
            problems.append(Problem(setting, f"environment variable {name} is not set"))
            return match.group(0)
        return environ[name]

    resolved = _REFERENCE.sub(substitute, text)
    return Resolved(resolved, text) if resolved != text else text


def resolve_references(
    raw: Any,
    environ: Mapping[str, str],
    setting_name: Callable[[str], str] = str,
    _path: str = "",
) -> tuple[Any, list[Problem]]:
    """Resolve every reference in a nested structure of dicts, lists and strings.

    Returns the resolved structure and the problems found, each naming the setting
    (``setting_name`` turns a dotted path into the name the user wrote, e.g. the Connect
    property it came from).
    """
    problems: list[Problem] = []
    if isinstance(raw, str) and "${" in raw:
        return _resolve_text(raw, setting_name(_path), environ, problems), problems
    if isinstance(raw, Mapping):
        resolved: dict[Any, Any] = {}
        for key, value in raw.items():
            path = f"{_path}.{key}" if _path else str(key)
            resolved[key], found = resolve_references(value, environ, setting_name, path)
            problems.extend(found)
        return resolved, problems
    if isinstance(raw, list):
        items = []
        for index, value in enumerate(raw):
            item, found = resolve_references(value, environ, setting_name, f"{_path}[{index}]")
            items.append(item)
            problems.extend(found)
        return items, problems
    return raw, problems
