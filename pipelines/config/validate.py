"""Raw settings (a nested dict) to :class:`SinkSettings`, or one :class:`ConfigError`.

Every source (YAML, Kafka Connect properties or JSON) ends here, so references are
resolved and pydantic's complaints are turned into problems that name the setting the
user wrote, in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from pipelines.config.model import SinkSettings
from pipelines.config.references import resolve_references
from pipelines.errors import ConfigError, Problem

SettingName = Callable[[str], str]
"""Turns one of our dotted paths (``kusto.auth.client_secret``) into the user's name for it."""

_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown setting",
}


def _path(location: tuple[str | int, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path and field else path or field


def problems_of(error: ValidationError, setting_name: SettingName = str) -> list[Problem]:
    """One problem per complaint of ``error``, naming the setting; input values left out."""
    problems = []
    for detail in error.errors(include_input=False, include_url=False):
        path = _path(detail["loc"])
        if detail["type"] == "sink_settings":
            for field, message in detail.get("ctx", {})["problems"]:
                problems.append(Problem(setting_name(_join(path, field)), message))
            continue
        message = _MESSAGES.get(detail["type"], detail["msg"]).removeprefix("Value error, ")
        problems.append(Problem(setting_name(path), message))
    # Two fields can come from one property (user and password from sasl.jaas.config).
    return list(dict.fromkeys(problems))


def validate_settings(
    raw: Any,
    *,
    environ: Mapping[str, str] | None = None,
    setting_name: SettingName = str,
) -> SinkSettings:
    """Resolve ``${env:...}`` references in ``raw``, then validate it as :class:`SinkSettings`.

    Raises:
        ConfigError: listing every problem, each with the setting it concerns.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("the settings must be a mapping of names to values")
    resolved, problems = resolve_references(
        raw, os.environ if environ is None else environ, setting_name
    )
    if problems:
        raise ConfigError(problems)
    try:
        return SinkSettings.model_validate(resolved)
    except ValidationError as error:
        raise ConfigError(problems_of(error, setting_name)) from None
