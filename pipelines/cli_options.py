"""What the ``kusto-sink`` commands share: the ``-c FILE`` option, loading the settings it
names (a plain message, not a traceback, when they are bad), and the Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipelines.config import CONFIG_ENV, SinkSettings, config_path, load_settings
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    import dagster as dg

# In a source checkout (`pip install -e`), the repository's dagster.yaml.
PROJECT_INSTANCE_SETTINGS = Path(__file__).resolve().parent.parent / "dagster.yaml"

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


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, by default ``./dagster_home`` (the one ``dagster dev`` and ``make
    demo`` use when started from the repository), made when missing.

    The default home gets the project's instance settings (run queue, tag limits, run retries)
    linked in when it has none, as ``make demo`` does: without them Dagster would run with
    its own defaults, none of which bound the sink's runs.
    """
    chosen = os.environ.get("DAGSTER_HOME")
    home = Path(chosen) if chosen else Path("dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not chosen and not settings.exists() and PROJECT_INSTANCE_SETTINGS.exists():
        settings.symlink_to(PROJECT_INSTANCE_SETTINGS)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def dagster_instance() -> dg.DagsterInstance:
    """The instance of :func:`dagster_home`."""
    import dagster as dg  # not at the top: commands that need no instance start faster

    dagster_home()
    return dg.DagsterInstance.get()
