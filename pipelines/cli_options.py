"""What the ``kusto-sink`` commands share: the ``-c FILE`` option, loading the settings it
names (a plain message, not a traceback, when they are bad), and the Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path

import click
import dagster as dg

from pipelines.config import CONFIG_ENV, SinkSettings, config_path, load_settings
from pipelines.errors import ConfigError

config_option = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Settings: YAML, or a Kafka Connect .properties/.json file (default: ${CONFIG_ENV})",
)


def settings_of(config_file: Path | None) -> SinkSettings:
    """The settings of ``-c FILE``, else of ``$KUSTO_SINK_CONFIG``."""
    try:
        return load_settings(config_path(config_file))
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def dagster_instance() -> dg.DagsterInstance:
    """The instance of ``$DAGSTER_HOME``, by default ``./dagster_home`` (the one ``dagster dev``
    and ``make demo`` use when started from the repository)."""
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()
