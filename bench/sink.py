"""The sink under measurement: settings for one case, a drain through Dagster, and the core.

Two ways to run the same settings:

- :func:`drain` runs ``kusto-sink drain`` in a child process, exactly as a user would, and
  samples the peak memory of it and of every process it starts (Dagster's step processes);
- :func:`deliver_in_process` calls the sink's own ``SinkRuntime.deliver`` for each planned
  range in this process, no Dagster, and splits the time into the sink's own work, blob
  uploads and the wait for Kusto (the emulator) to confirm: the sink's figure is then not
  hidden behind the emulator's or the orchestrator's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from bench.kusto import FirstRowWatch, count
from bench.procs import TreeSampler
from bench.timeline import drain_timeline

# How long after an at-least-once drain its last batches may take to become rows.
ROWS_WAIT_S = 120.0

Delivery = Literal["exactly_once", "at_least_once"]
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    """Where a case's records come from and go to."""

    bootstrap: str
    kusto_url: str
    registry_url: str | None
    topic: str
    db: str
    table: str
    format: str
    mapping: str | None


@dataclass(frozen=True)
class Case:
    """How the sink runs: delivery guarantee, ingestion mode, batch size."""

    delivery: Delivery = "exactly_once"
    streaming: bool = False
    flush_size_bytes: int = 100 << 20
    workers: int | None = None

    @property
    def label(self) -> str:
        mode = "streaming" if self.streaming else "queued"
        return f"{self.delivery.replace('_', '-')} {mode}"


def settings(
    name: str, target: Target, case: Case, staging: Path, **overrides: Any
) -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "topic": target.topic,
        "db": target.db,
        "table": target.table,
        "format": target.format,
        "streaming": case.streaming,
    }
    if target.mapping:
        mapping["mapping"] = target.mapping
    if target.format == "avro":
        mapping["value_converter"] = {"kind": "avro", "schema_registry_url": target.registry_url}
    return {
        "name": name,
        "kafka": {"bootstrap_servers": target.bootstrap, "auto_offset_reset": "earliest"},
        "kusto": {"ingestion_url": target.kusto_url},
        "topics": [target.topic],
        "mappings": [mapping],
        "value_converter": {"kind": "string"},
        "flush_size_bytes": case.flush_size_bytes,
        "behavior_on_error": "fail",
        "delivery": case.delivery,
        "tempdir": str(staging),
        **overrides,
    }


def write_settings(workdir: Path, name: str, target: Target, case: Case, **overrides: Any) -> Path:
    path = workdir / f"{name}.yaml"
    staging = workdir / "staging"
    path.write_text(yaml.safe_dump(settings(name, target, case, staging, **overrides)))
    return path


@dataclass
class DrainResult:
    records: int
    seconds: float
    first_row_s: float | None
    rows_in_kusto: int
    # From the drain's start until every record was a row: later than the drain's end when
    # it does not wait for Kusto (at-least-once commits once a batch is handed over).
    all_rows_s: float | None
    peak_rss_mb: dict[str, float]
    processes: list[dict[str, Any]] = field(default_factory=list)
    # Orchestration vs work, from the Dagster event log (see bench.timeline).
    timeline: dict[str, Any] = field(default_factory=dict)
    # CPU seconds of the drain's process tree (forked step processes included).
    tree_cpu_s: float = 0.0
    # CPU seconds per part of the machine while the drain ran (see bench.cpu).
    cpu_s: dict[str, float] = field(default_factory=dict)


def dagster_home(workdir: Path) -> Path:
    """A fresh Dagster instance with the project's instance settings."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    return home


def drain(
    settings_path: Path, target: Target, kusto: Any, records: int, *, workers: int | None = None
) -> DrainResult:
    """``kusto-sink drain`` from offset 0 until every partition is committed."""
    workdir = settings_path.parent
    home = dagster_home(workdir / f"{settings_path.stem}-dagster")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [sys.executable, "-m", "pipelines.cli", "drain", "-c", str(settings_path)]
    if workers is not None:
        command += ["--workers", str(workers)]
    watch = FirstRowWatch(kusto, target.db, target.table).start()
    began, launched_at = time.monotonic(), time.time()
    log = workdir / f"{settings_path.stem}.drain.log"
    with open(log, "wb") as out:
        child = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=out)
        with TreeSampler(child.pid) as sampler:
            code = child.wait()
            sampler.sample()
    seconds, ended_at = time.monotonic() - began, time.time()
    watch.stop()
    rows = count(kusto, target.db, target.table)
    while rows < records and time.monotonic() - began < seconds + ROWS_WAIT_S:
        time.sleep(0.2)
        rows = count(kusto, target.db, target.table)
    all_rows_s = time.monotonic() - began if rows >= records else None
    if code != 0:
        raise RuntimeError(f"kusto-sink drain failed ({code}); see {log}:\n{_tail(log)}")
    return DrainResult(
        records=records,
        seconds=seconds,
        first_row_s=watch.seconds,
        rows_in_kusto=rows,
        all_rows_s=all_rows_s,
        peak_rss_mb=sampler.by_role(),
        processes=[
            {"pid": p.pid, "command": p.command, "peak_rss_mb": round(p.peak_rss_mb, 1)}
            for p in sampler.peaks.values()
        ],
        timeline=drain_timeline(home, launched_at, ended_at),
        tree_cpu_s=sampler.cpu_s(),
    )


@dataclass
class CoreResult:
    records: int
    seconds: float
    # Seconds spent in each ingestor method: uploads (``submit``), waits for Kusto, lookups.
    kusto_s: dict[str, float]

    @property
    def own_s(self) -> float:
        """Reading, checking, batching and gzipping: the sink's own share of the time."""
        return self.seconds - sum(self.kusto_s.values())


class TimedIngestor:
    """The runtime's ingestor, with the time spent in each of its methods summed."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found):
            return found

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.monotonic()
            try:
                return found(*args, **kwargs)
            finally:
                spent = time.monotonic() - began
                self.seconds[name] = self.seconds.get(name, 0.0) + spent

        return timed


def deliver_in_process(
    settings_path: Path, records: int, profile_to: Path | None = None
) -> CoreResult:
    """Every planned range through ``SinkRuntime.deliver_all``, as a run's step does, no Dagster.

    With ``profile_to``, a pyinstrument profile of the deliveries is written there as text.
    """
    from pipelines.config import load_settings
    from pipelines.runtime import SinkRuntime

    profiler = None
    if profile_to is not None:
        from pyinstrument import Profiler  # a dev dependency: only when asked for

        profiler = Profiler(interval=0.005)
    with SinkRuntime(load_settings(str(settings_path))) as runtime:
        timed = TimedIngestor(runtime.ingestor)
        # `ingestor` is a cached property: the instance attribute takes its place.
        runtime.__dict__["ingestor"] = timed
        began = time.monotonic()
        if profiler:
            profiler.start()
        for outcome in runtime.deliver_all(runtime.plan()):
            if isinstance(outcome, Exception):
                raise outcome
        if profiler and profile_to:
            profiler.stop()
            profile_to.write_text(profiler.output_text(unicode=False, color=False))
        seconds = time.monotonic() - began
    return CoreResult(records, seconds, timed.seconds)


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
