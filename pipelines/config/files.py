"""Settings files: read YAML or a Kafka Connect config, write YAML.

A file is YAML (ours), a Connect ``.properties`` file, or a Connect JSON config
(``{"name": ..., "config": {...}}`` as the Connect REST API takes it, or the bare config
map), told apart by suffix, else by content.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import SecretStr

from pipelines.config.connect import LoadedSettings, import_connect
from pipelines.config.model import SinkSettings
from pipelines.config.properties import parse_properties
from pipelines.config.validate import validate_settings
from pipelines.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_ENV = "KUSTO_SINK_CONFIG"
"""Environment variable naming the settings file when ``-c FILE`` is not given."""

Kind = Literal["yaml", "properties", "json"]


def config_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The settings file to use: ``option`` (``-c FILE``), else ``$KUSTO_SINK_CONFIG``."""
    chosen = option or os.environ.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError(f"no settings file: pass -c FILE or set {CONFIG_ENV}", setting=CONFIG_ENV)
    return Path(chosen)


def _kind(path: Path, text: str) -> Kind:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix in (".properties", ".json"):
        return "properties" if suffix == ".properties" else "json"
    if text.lstrip().startswith("{"):
        return "json"
    return "properties" if re.search(r"(?m)^\s*[A-Za-z][\w.\-]*\s*=", text) else "yaml"


def _connect_name(config: Mapping[str, Any], outer: Mapping[str, Any], source: Path) -> str:
    name = outer.get("name") or config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"required in {source}: the sink's consumer group is connect-<name>, "
            "the group the Kafka Connect connector committed its offsets in",
            setting="name",
        )
    return name.strip()


def read_settings(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> LoadedSettings:
    """Settings from a file, with the Kafka Connect properties that had no use here.

    Raises:
        ConfigError: the file cannot be read or parsed, or the settings are invalid.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read {source}: {error.strerror}", setting="config file"
        ) from None
    kind = _kind(source, text)
    if kind == "properties":
        try:
            props = parse_properties(text)
        except ValueError as error:
            raise ConfigError(f"{source}: {error}", setting="config file") from None
        return import_connect(props, _connect_name(props, {}, source), environ=environ)
    try:
        document = json.loads(text) if kind == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{source} is not valid {kind}: {error}", setting="config file") from None
    if kind == "json" and isinstance(document, dict) and "kusto" not in document:
        config = document.get("config", document)
        if not isinstance(config, dict):
            raise ConfigError("must be a map of Connect properties", setting="config")
        return import_connect(config, _connect_name(config, document, source), environ=environ)
    return LoadedSettings(validate_settings(document, environ=environ), {})


def load_settings(path: str | os.PathLike[str]) -> SinkSettings:
    """Settings from a YAML file or a Kafka Connect ``.properties`` / JSON config.

    Unused Connect properties are logged as warnings, each by name.

    Raises:
        ConfigError: listing every problem, each naming the setting at fault.
    """
    loaded = read_settings(path)
    for setting, reason in loaded.unused.items():
        logger.warning("Kafka Connect property %s is not used: %s", setting, reason)
    return loaded.settings


def _placeholder(path: str) -> str:
    return "KUSTO_SINK_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_").upper()


def _plain(value: Any, path: str, unset: list[str]) -> Any:
    if isinstance(value, SecretStr):
        reference = getattr(value, "reference", None)
        if reference:
            return reference
        variable = _placeholder(path)
        unset.append(variable)
        return f"${{env:{variable}}}"
    if isinstance(value, dict):
        return {key: _plain(item, f"{path}.{key}", unset) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, f"{path}[{index}]", unset) for index, item in enumerate(value)]
    if isinstance(value, Path | str):
        return str(value)
    return value


def to_yaml(settings: SinkSettings) -> str:
    """The settings as YAML that :func:`load_settings` reads back to equal settings.

    Secrets are written as the ``${env:NAME}`` references they were read from, never as
    values. A secret that was written literally in its source becomes a reference to a new
    variable, listed in a header comment; it must be set before the YAML is loaded.
    """
    unset: list[str] = []
    data = _plain(settings.model_dump(exclude_defaults=True), "", unset)
    header = "# kusto-sink settings\n"
    if unset:
        header += (
            "# Secrets that were written as values are not copied. Set these variables to "
            "them before loading:\n" + "".join(f"#   {variable}\n" for variable in unset)
        )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
