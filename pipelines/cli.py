"""The ``kusto-sink`` command line."""

from __future__ import annotations

import click

from devstack.cli import devstack


@click.group()
def main() -> None:
    """Kafka → Azure Data Explorer sink, orchestrated by Dagster."""


main.add_command(devstack)
