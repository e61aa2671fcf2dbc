"""One benchmark run: load the broker, measure every phase, write the results.

Phases (each can be left out):

- ``throughput``: per format, the same records through the limit (bare consume + gzip),
  the sink in-process (no Dagster; the wait for Kusto split out) and ``kusto-sink drain``
  exactly-once queued; for the ``mode_formats`` also at-least-once and streaming drains;
- ``freshness``: a steady producer with the sensors under dagster-daemon, streaming and
  queued;
- ``scaling``: drains over 1, 2, 4, 8 partitions with 1 and 2 worker processes;
- ``memory``: drains at flush sizes of 1, 16, 64, 256 MB, peak RSS of every process.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import data, freshness, limit, report, sink
from bench import kusto as bench_kusto
from bench.cpu import CpuMeter
from devstack.stack import StackConfig

PHASES = ("throughput", "freshness", "scaling", "memory")
DB = "bench"
STREAMING_FLUSH_BYTES = 4 << 20  # streaming ingestion takes at most 4 MiB compressed


@dataclass(frozen=True)
class Options:
    records: int = 1_000_000
    partitions: int = 2
    formats: Sequence[str] = data.FORMATS
    mode_formats: Sequence[str] = ("json",)
    phases: Sequence[str] = PHASES
    flush_size_bytes: int = 100 << 20
    freshness_rate: int = 1000
    freshness_seconds: float = 60.0
    freshness_flush_interval_ms: int = 10_000
    scale_records: int = 1_000_000
    scale_partitions: Sequence[int] = (1, 2, 4, 8)
    scale_workers: Sequence[int] = (1, 2)
    memory_records: int = 1_000_000
    flush_sizes_mb: Sequence[int] = (1, 16, 64, 256)
    profile: bool = False
    out_dir: Path = Path("bench/results")
    workdir: Path = Path("/tmp/kusto-sink-bench")


@dataclass
class Bench:
    """What every phase shares: the stack's addresses, a Kusto client, a run id, a log."""

    stack: StackConfig
    options: Options
    say: Callable[[str], None]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def stem(self) -> str:
        """File names of this run's outputs: its start time."""
        return self.started.strftime("%Y-%m-%dT%H%M%SZ")

    def __post_init__(self) -> None:
        self.kusto = bench_kusto.client(self.stack.kusto_url)
        self.workdir = self.options.workdir / self.run_id
        self.workdir.mkdir(parents=True, exist_ok=True)

    def target(self, topic: str, format: str, case_name: str) -> sink.Target:
        table = f"{format}_{case_name}_{self.run_id}".replace("-", "_")
        mapping = bench_kusto.create_table(self.kusto, DB, table, format)
        return sink.Target(
            self.stack.bootstrap_servers,
            self.stack.kusto_url,
            self.stack.registry_url,
            topic,
            DB,
            table,
            format,
            mapping,
        )

    def load(self, format: str, partitions: int, records: int, label: str) -> tuple[str, int]:
        topic = f"bench-{self.run_id}-{label}"
        encode = data.encoder(format, topic, self.stack.registry_url)
        self.say(f"loading {records:,} {format} records into {topic} ({partitions} partitions)")
        sent = data.load(
            self.stack.bootstrap_servers, topic, partitions, data.values(encode, 0, records)
        )
        return topic, sent

    def drain(self, topic: str, format: str, case: sink.Case, name: str, records: int) -> Any:
        target = self.target(topic, format, name)
        path = sink.write_settings(self.workdir, f"bench-{self.run_id}-{name}", target, case)
        self.say(f"  drain {name}: {case.label}, flush {case.flush_size_bytes >> 20} MB")
        with CpuMeter(self.stack) as cpu:
            result = sink.drain(path, target, self.kusto, records, workers=case.workers)
        # The drain's tree as sampled, not this process's rusage, which misses the step
        # processes a forkserver started and nobody waited for.
        result.cpu_s = {**cpu.seconds, "measured": round(result.tree_cpu_s, 2)}
        if result.rows_in_kusto != records:
            raise RuntimeError(
                f"{target.db}.{target.table} holds {result.rows_in_kusto} rows after the drain "
                f"of {records} records from topic={topic}"
            )
        return result, target


def throughput(bench: Bench) -> list[dict[str, Any]]:
    return [row for format in bench.options.formats for row in _throughput_of(bench, format)]


def _throughput_of(bench: Bench, format: str) -> list[dict[str, Any]]:
    options, rows = bench.options, []
    topic, sent = bench.load(format, options.partitions, options.records, format)
    n = options.records

    def row(run: str, seconds: float, **extra: Any) -> dict[str, Any]:
        return {
            "format": format,
            "run": run,
            "records": n,
            "seconds": round(seconds, 2),
            "records_per_s": n / seconds,
            "mb_per_s": sent / seconds / 1e6,
            **extra,
        }

    out = bench.workdir / f"limit-{format}.gz"
    with CpuMeter(bench.stack) as cpu:
        bare = limit.consume_and_gzip(
            bench.stack.bootstrap_servers, topic, options.partitions, n, out
        )
    out.unlink()
    rows.append(row("limit", bare.seconds, gzip_bytes=bare.gzip_bytes, cpu_s=cpu.seconds))
    limit_rate = n / bare.seconds
    bench.say(f"  limit: {limit_rate:,.0f} records/s; CPU s {cpu.seconds}")
    # The same loop with librdkafka's fetch settings: the limit sessions 1 and 2 measured
    # against, kept to compare with (its reader stalls: see pipelines.read.READER_DEFAULTS).
    untuned = limit.consume_and_gzip(
        bench.stack.bootstrap_servers,
        topic,
        options.partitions,
        n,
        out,
        fetch_settings=limit.LIBRDKAFKA_FETCH,
    )
    out.unlink()
    rows.append(row(limit.UNTUNED, untuned.seconds, gzip_bytes=untuned.gzip_bytes))
    bench.say(f"  {limit.UNTUNED}: {n / untuned.seconds:,.0f} records/s")

    case = sink.Case(flush_size_bytes=options.flush_size_bytes)
    target = bench.target(topic, format, "core")
    path = sink.write_settings(bench.workdir, f"bench-{bench.run_id}-{format}-core", target, case)
    profile = options.out_dir / f"{bench.stem}-profile-{format}.txt" if options.profile else None
    if profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
    with CpuMeter(bench.stack) as cpu:
        core = sink.deliver_in_process(path, n, profile)
    rows.append(
        row(
            "sink in-process, exactly-once queued",
            core.seconds,
            vs_limit=n / core.seconds / limit_rate,
            kusto_s={k: round(v, 2) for k, v in core.kusto_s.items()},
            own_records_per_s=n / core.own_s,
            own_vs_limit=n / core.own_s / limit_rate,
            profile=str(profile) if profile else None,
            cpu_s=cpu.seconds,
        )
    )
    bench.say(
        f"  in-process: {n / core.seconds:,.0f} records/s, own {n / core.own_s:,.0f}; "
        f"CPU s {cpu.seconds}"
    )

    cases = [("eo", case)]
    if format in options.mode_formats:
        cases += [
            ("alo", sink.Case("at_least_once", flush_size_bytes=options.flush_size_bytes)),
            ("stream", sink.Case(streaming=True, flush_size_bytes=STREAMING_FLUSH_BYTES)),
        ]
    for name, drain_case in cases:
        result, _ = bench.drain(topic, format, drain_case, f"{format}-{name}", n)
        rows.append(
            row(
                f"drain {drain_case.label}",
                result.seconds,
                vs_limit=n / result.seconds / limit_rate,
                first_row_s=_round(result.first_row_s),
                all_rows_s=_round(result.all_rows_s),
                peak_rss_mb={k: round(v) for k, v in result.peak_rss_mb.items()},
                timeline=result.timeline,
                cpu_s=result.cpu_s,
            )
        )
        bench.say(
            f"  drain: {n / result.seconds:,.0f} records/s; {result.timeline}; CPU s {result.cpu_s}"
        )
    return rows


def freshness_phase(bench: Bench) -> list[dict[str, Any]]:
    options, rows = bench.options, []
    for mode, streaming in (("streaming", True), ("queued", False)):
        topic = f"bench-{bench.run_id}-fresh-{mode}"
        target = bench.target(topic, "json", f"fresh_{mode}")
        case = sink.Case(
            streaming=streaming,
            flush_size_bytes=STREAMING_FLUSH_BYTES if streaming else options.flush_size_bytes,
        )
        path = sink.write_settings(
            bench.workdir,
            f"bench-{bench.run_id}-fresh-{mode}",
            target,
            case,
            flush_interval_ms=options.freshness_flush_interval_ms,
        )
        bench.say(
            f"freshness {mode}: {options.freshness_rate}/s for {options.freshness_seconds:.0f} s, "
            f"flush interval {options.freshness_flush_interval_ms / 1000:.0f} s"
        )
        result = freshness.measure(
            mode=mode,
            settings_path=path,
            kusto=bench.kusto,
            db=DB,
            table=target.table,
            bootstrap=bench.stack.bootstrap_servers,
            topic=topic,
            partitions=1,
            rate=options.freshness_rate,
            seconds=options.freshness_seconds,
        )
        summary = result.summary()
        summary["flush_interval_s"] = options.freshness_flush_interval_ms / 1000
        rows.append(summary)
        bench.say(f"  p50 {summary['p50_s']} s, p95 {summary['p95_s']} s, p99 {summary['p99_s']} s")
    return rows


def scaling(bench: Bench) -> list[dict[str, Any]]:
    options, rows = bench.options, []
    for partitions in options.scale_partitions:
        topic, _ = bench.load("json", partitions, options.scale_records, f"scale{partitions}")
        for workers in options.scale_workers:
            case = sink.Case(flush_size_bytes=options.flush_size_bytes, workers=workers)
            result, _ = bench.drain(
                topic, "json", case, f"scale-p{partitions}-w{workers}", options.scale_records
            )
            rows.append(
                {
                    "partitions": partitions,
                    "workers": workers,
                    "records": options.scale_records,
                    "seconds": round(result.seconds, 2),
                    "records_per_s": options.scale_records / result.seconds,
                    # Without the drain process's own start and end (imports, instance):
                    # how the runs themselves scale.
                    "in_runs_records_per_s": _per_s(
                        options.scale_records, result.timeline.get("in_runs_s")
                    ),
                    "peak_rss_mb": {k: round(v) for k, v in result.peak_rss_mb.items()},
                    "timeline": result.timeline,
                    "cpu_s": result.cpu_s,
                    # Cores the whole machine kept busy on average (2 = both, all the time).
                    "cores_busy": round(sum(result.cpu_s.values()) / result.seconds, 2),
                }
            )
            bench.say(
                f"  {options.scale_records / result.seconds:,.0f} records/s, "
                f"in runs {rows[-1]['in_runs_records_per_s'] or 0:,.0f}, "
                f"cores busy {rows[-1]['cores_busy']}"
            )
    return rows


def memory(bench: Bench) -> list[dict[str, Any]]:
    options, rows = bench.options, []
    topic, _ = bench.load("json", 1, options.memory_records, "memory")
    for flush_mb in options.flush_sizes_mb:
        case = sink.Case(flush_size_bytes=flush_mb << 20)
        result, target = bench.drain(topic, "json", case, f"mem-{flush_mb}", options.memory_records)
        extents = bench.kusto.execute_mgmt(DB, f".show table {target.table} extents")
        rows.append(
            {
                "flush_mb": flush_mb,
                "batches": len(extents.primary_results[0].rows),
                "seconds": round(result.seconds, 2),
                "peak_rss_mb": {k: round(v) for k, v in result.peak_rss_mb.items()},
                "processes": result.processes,
            }
        )
        bench.say(f"  peak RSS {rows[-1]['peak_rss_mb']}")
    return rows


def _per_s(records: int, seconds: float | None) -> float | None:
    return records / seconds if seconds else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(stack: StackConfig, options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """Every selected phase; returns the results and writes them under ``options.out_dir``."""
    bench = Bench(stack, options, say)
    results: dict[str, Any] = {
        "date": bench.started.isoformat(timespec="seconds"),
        "command": " ".join(["kusto-sink", "bench", *sys.argv[2:]]),
        "machine": {"cpus": os.cpu_count(), "load_before": _load()},
        "options": {k: str(v) for k, v in options.__dict__.items()},
    }
    phases: dict[str, Callable[[Bench], list[dict[str, Any]]]] = {
        "throughput": throughput,
        "freshness": freshness_phase,
        "scaling": scaling,
        "memory": memory,
    }
    for name in options.phases:
        say(f"== {name}")
        results[name] = phases[name](bench)
    results["machine"]["load_after"] = _load()
    files = report.write(results, options.out_dir, bench.stem)
    results["files"] = {k: str(p) for k, p in files.items()}
    return results
