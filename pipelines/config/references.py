"""``${env:NAME}`` references in settings, and secrets that remember them.

Values may hold references anywhere, in Kafka Connect's config-provider syntax:
``${env:NAME}`` (or plain ``${NAME}``) for an environment variable, ``${file:PATH:KEY}``
for a key of a properties file, ``${directory:PATH:FILE}`` for a file's content (a mounted
Kubernetes secret). They are resolved once, before validation, and a secret keeps the text
it was resolved from so :func:`~pipelines.config.to_yaml` writes the reference back instead
of the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

from pipelines.config.properties import parse_properties
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


def is_reference(text: str) -> bool:
    """Whether ``text`` is one reference and nothing else, like ``${env:KAFKA_JAAS}``."""
    return _REFERENCE.fullmatch(text.strip()) is not None


def _from_file(path: str, key: str) -> str:
    """Kafka Connect's FileConfigProvider: ``key`` of the properties file at ``path``."""
    try:
        props = parse_properties(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise LookupError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise LookupError(f"{path}: {error}") from None
    if key not in props:
        raise LookupError(f"{path} has no key {key}")
    return props[key]


def _from_directory(directory: str, name: str) -> str:
    """Kafka Connect's DirectoryConfigProvider: the content of file ``name`` (a mounted secret)."""
    try:
        return (Path(directory) / name).read_text(encoding="utf-8")
    except OSError as error:
        raise LookupError(f"cannot read {Path(directory) / name}: {error.strerror}") from None


def _lookup(reference: str, environ: Mapping[str, str]) -> str:
    """The value of the inside of ``${...}``, or LookupError saying why there is none."""
    provider, _, rest = reference.partition(":") if ":" in reference else ("env", "", reference)
    if provider == "env":
        if not _ENV_NAME.fullmatch(rest):
            raise LookupError(f"${{{reference}}} is not a valid variable name")
        if rest not in environ:
            raise LookupError(f"environment variable {rest} is not set")
        return environ[rest]
    if provider in ("file", "directory"):
        path, _, key = rest.rpartition(":")  # a path may hold ':', a key does not
        if not path or not key:
            raise LookupError(f"${{{reference}}}: expected ${{{provider}:PATH:KEY}}")
        return (_from_file if provider == "file" else _from_directory)(path, key)
    raise LookupError(
        f"config provider '{provider}' in ${{{reference}}} is not supported; "
        "use ${env:NAME}, ${file:PATH:KEY} or ${directory:PATH:FILE}"
    )


def _resolve_text(
    text: str, setting: str, environ: Mapping[str, str], problems: list[Problem]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        try:
            return _lookup(match.group(1), environ)
        except LookupError as error:
            problems.append(Problem(setting, str(error)))
            return match.group(0)

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
