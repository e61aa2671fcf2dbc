"""The sink as a Dagster resource: its settings file, and the live clients built from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import dagster as dg
from pydantic import Field

from pipelines.config import SinkSettings, load_settings
from pipelines.runtime import SinkRuntime


@cache
def _settings(path: str) -> SinkSettings:
    return load_settings(path)


class SinkResource(dg.ConfigurableResource):
    """One sink: Kafka source, Kusto target, converters, dead-letter topics.

    Only the path of the settings file travels in run config; secrets stay in the
    environment (``${env:NAME}`` references) and never reach the Dagster UI.
    """

    config_path: str = Field(
        description="Sink settings: YAML, or a Kafka Connect .properties/.json file"
    )

    @property
    def settings(self) -> SinkSettings:
        return _settings(self.config_path)

    @contextmanager
    def runtime(self) -> Iterator[SinkRuntime]:
        with SinkRuntime(self.settings) as runtime:
            yield runtime
