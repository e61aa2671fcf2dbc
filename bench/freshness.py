"""Freshness: how long a record takes from Kafka to a Kusto query, with the sensors in charge.

A steady producer writes JSON events at a fixed rate, each with its Kafka timestamp set to
the moment it is produced, while ``dagster-daemon`` runs the sink's sensors (runs launched
by the daemon's queue, as in production). Every ``poll_s`` a KQL query counts the table's
rows per bucket of ids; rows that appeared since the last poll were made queryable in
between, so their latency is the poll time minus their Kafka timestamp (to within
``poll_s``). Within a bucket, ids arrive in offset order when the topic has one partition;
with more, a bucket's new rows are assumed to be its lowest ids not seen yet.

Freshness is a property of a sink that is already running: before the steady producer
starts, one warm-up record per partition must be queryable (the daemon has started, its
sensors ticked, the first run launched and delivered). That warm-up is reported on its own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import JsonEvents, producer
from bench.sink import dagster_home
from bench.timeline import runs_timeline
from devstack import kafka
from devstack.dagster_daemon import start_daemon, stop_daemon

BUCKET = 100
# Ids of the warm-up records: apart from the steady producer's 0, 1, 2, ...
WARMUP_ID = 1_000_000_000


@dataclass
class FreshnessResult:
    mode: str
    rate: int
    seconds: float
    produced: int
    seen: int
    latencies_s: list[float] = field(repr=False, default_factory=list)
    warmup_s: float | None = None
    # How the sensors' runs spent their time (bench.timeline.runs_timeline).
    runs: dict[str, Any] = field(default_factory=dict)

    def percentile(self, p: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rate": self.rate,
            "seconds": round(self.seconds, 1),
            "produced": self.produced,
            "seen": self.seen,
            **{f"p{p}_s": _round(self.percentile(p)) for p in (50, 95, 99)},
            "warmup_s": _round(self.warmup_s),
            "runs": self.runs,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class SteadyProducer(threading.Thread):
    """Produces ``rate`` records a second for ``seconds``, remembering each one's timestamp."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: int, seconds: float):
        super().__init__(name="steady-producer", daemon=True)
        self._out = producer(bootstrap)
        self._topic, self._partitions = topic, partitions
        self._rate, self._seconds = rate, seconds
        self._encode = JsonEvents()
        # Wall-clock seconds of each id's Kafka timestamp: the clock KQL polls are read on.
        self.sent_at: list[float] = []

    def run(self) -> None:
        began = time.time()
        i = 0
        total = int(self._rate * self._seconds)
        while i < total:
            due = began + i / self._rate
            now = time.time()
            if due > now:
                time.sleep(min(due - now, 0.01))
                continue
            # Everything due by now goes out in one go: a late tick does not lower the rate.
            while i < total and began + i / self._rate <= now:
                self._out.produce(
                    self._topic,
                    value=self._encode(i),
                    partition=i % self._partitions,
                    timestamp=int(now * 1000),
                )
                self.sent_at.append(now)
                i += 1
            self._out.poll(0)
        self._out.flush(30)


def _warm_up(
    bootstrap: str, topic: str, partitions: int, kusto: Any, db: str, table: str, timeout_s: float
) -> float:
    """Seconds until one record per partition, produced now, is queryable."""
    out, encode = producer(bootstrap), JsonEvents()
    for p in range(partitions):
        out.produce(topic, value=encode(WARMUP_ID + p), partition=p)
    out.flush(30)
    began = time.monotonic()
    query = f"{table} | where id >= {WARMUP_ID} | count"
    while time.monotonic() - began < timeout_s:
        try:
            if kusto.execute_query(db, query).primary_results[0][0]["Count"] >= partitions:
                return time.monotonic() - began
        except Exception:  # noqa: BLE001 - a busy emulator may time out: ask again
            pass
        time.sleep(0.5)
    raise RuntimeError(f"no warm-up record of topic={topic} reached {db}.{table} in {timeout_s}s")


def measure(
    *,
    mode: str,
    settings_path: Path,
    kusto: Any,
    db: str,
    table: str,
    bootstrap: str,
    topic: str,
    partitions: int,
    rate: int,
    seconds: float,
    poll_s: float = 1.0,
    tail_s: float = 90.0,
    warmup_timeout_s: float = 240.0,
) -> FreshnessResult:
    """Warm the sink up, produce for ``seconds`` under the running daemon, then wait up to
    ``tail_s`` for the rest."""
    workdir = settings_path.parent
    kafka.create_topic(bootstrap, topic, partitions)
    home = dagster_home(workdir / f"{settings_path.stem}-dagster")
    daemon = start_daemon(home, settings_path, workdir / f"{settings_path.stem}.daemon.log")
    steady = SteadyProducer(bootstrap, topic, partitions, rate, seconds)
    counts: dict[int, int] = {}
    latencies: list[float] = []
    try:
        warmup_s = _warm_up(bootstrap, topic, partitions, kusto, db, table, warmup_timeout_s)
        steady.start()
        began = time.monotonic()
        total = int(rate * seconds)
        while time.monotonic() - began < seconds + tail_s and sum(counts.values()) < total:
            time.sleep(poll_s)
            now = time.time()
            query = f"{table} | where id < {WARMUP_ID} | summarize n=count() by b=id / {BUCKET}"
            try:
                rows = kusto.execute_query(db, query).primary_results[0]
            except Exception:  # noqa: BLE001 - a busy emulator may time out: ask again
                continue
            for row in rows:
                bucket, n = int(row["b"]), int(row["n"])
                before = counts.get(bucket, 0)
                for i in range(bucket * BUCKET + before, bucket * BUCKET + n):
                    if i < len(steady.sent_at):
                        latencies.append(now - steady.sent_at[i])
                counts[bucket] = n
        steady.join()
        elapsed = time.monotonic() - began
    finally:
        stop_daemon(daemon)
    return FreshnessResult(
        mode,
        rate,
        elapsed,
        len(steady.sent_at),
        len(latencies),
        latencies,
        warmup_s=warmup_s,
        runs=runs_timeline(home),
    )
