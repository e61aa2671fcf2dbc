"""The sink as a Dagster resource: its settings file, and the live clients built from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import dagster as dg
from pydantic import Field, PrivateAttr

from pipelines.config import SinkSettings, load_settings
from pipelines.runtime import SinkRuntime


@cache
def _settings(path: str) -> SinkSettings:
    return load_settings(path)


class SinkResource(dg.ConfigurableResource):
    """One sink: Kafka source, Kusto target, converters, dead-letter topics.

    Only the path of the settings file travels in run config; secrets stay in the
    environment (``${env:NAME}`` references) and never reach the Dagster UI.

    During a run, every step of the run's process shares one :class:`SinkRuntime`: the
    preflight check runs once per run instead of once per range, and the Kafka and Kusto
    clients are opened once (with the in-process executor, a run's steps share the
    resource; step processes each get their own). A step whose attempt fails drops the
    shared runtime, so its retry starts on fresh clients.
    """

    config_path: str = Field(
        description="Sink settings: YAML, or a Kafka Connect .properties/.json file"
    )
    _in_run: bool = PrivateAttr(default=False)
    _shared: SinkRuntime | None = PrivateAttr(default=None)

    @property
    def settings(self) -> SinkSettings:
        return _settings(self.config_path)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._drop_shared()
        self._in_run = False

    @contextmanager
    def runtime(self) -> Iterator[SinkRuntime]:
        """The sink's clients: the run's shared ones in a run, else fresh ones closed after."""
        if not self._in_run:
            with SinkRuntime(self.settings) as runtime:
                yield runtime
            return
        if self._shared is None:
            self._shared = SinkRuntime(self.settings)
        try:
            yield self._shared
        except BaseException:
            self._drop_shared()
            raise

    def _drop_shared(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None
