"""``kusto-sink import-config FILE``: a Kafka Connect config (or YAML) as our YAML."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.config.files import read_settings, to_yaml
from pipelines.errors import ConfigError


@click.command("import-config")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_config(file: Path) -> None:
    """Print the YAML settings equivalent to FILE (Connect .properties or JSON, or YAML)."""
    try:
        loaded = read_settings(file)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    for setting, reason in loaded.unused.items():
        click.echo(f"warning: {setting} is not used: {reason}", err=True)
    click.echo(to_yaml(loaded.settings), nl=False)
