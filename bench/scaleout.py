"""Scale-out simulation: one topic drained by 1, 2, 4 worker processes, two ways.

    python -m bench.scaleout --records 400000 --partitions 8 --workers 1,2,4

- **executor**: one run, its steps (one per partition) on N processes: ``kusto-sink drain
  --workers N``, Dagster's multiprocess executor forked from a preloaded forkserver (what
  ``tasks.max`` N gives the sensors' runs); N = 1 runs the steps in the run's own process.
- **run workers**: N runs at once, each a ``dagster job execute`` process delivering its
  share of the partitions, on one PostgreSQL-backed instance: what K8sRunLauncher does
  with a pod per run, or the daemon with several runs in flight.

Every case drains the same records into a table of its own (its own consumer group), then
checks that the table holds each id exactly once and that every partition is committed.
Writes bench/results/<date>-scaleout.json, .md and .png. Starts the local stack servers
that are not running (and stops those it started), and a PostgreSQL for the run workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import data, sink
from bench import kusto as bench_kusto
from devstack import postgres, stack
from pipelines.config import load_settings
from pipelines.jobs import run_config, run_tags
from pipelines.plan import OffsetRange
from pipelines.runtime import SinkRuntime

DB = "bench"
MODES = ("executor", "run workers")
REPO = Path(__file__).resolve().parents[1]
WORKER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Options:
    records: int = 400_000
    partitions: int = 8
    workers: Sequence[int] = (1, 2, 4)
    modes: Sequence[str] = MODES
    flush_size_bytes: int = 100 << 20
    out_dir: Path = Path("bench/results")
    workdir: Path = Path("/tmp/kusto-sink-scaleout")


@dataclass(frozen=True)
class Case:
    mode: str
    workers: int
    seconds: float
    rows: int
    distinct_ids: int
    committed: bool

    def row(self, records: int) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "workers": self.workers,
            "records": records,
            "seconds": round(self.seconds, 2),
            "records_per_s": round(records / self.seconds),
            "rows": self.rows,
            "distinct_ids": self.distinct_ids,
            "duplicates": self.rows - self.distinct_ids,
            "lost": records - self.distinct_ids,
            "committed": self.committed,
        }


def split(ranges: list[OffsetRange], workers: int) -> list[list[OffsetRange]]:
    """``ranges`` dealt round-robin to ``workers`` runs; never an empty run."""
    groups = [ranges[i::workers] for i in range(workers)]
    return [group for group in groups if group]


class ScaleOut:
    def __init__(self, config: stack.StackConfig, options: Options, say: Callable[[str], None]):
        self.config, self.options, self.say = config, options, say
        self.run_id = uuid.uuid4().hex[:6]
        self.workdir = options.workdir / self.run_id
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kusto = bench_kusto.client(config.kusto_url)
        self.topic = f"scaleout-{self.run_id}"

    def load(self) -> None:
        o = self.options
        self.say(
            f"loading {o.records:,} JSON records into {self.topic} ({o.partitions} partitions)"
        )
        encode = data.encoder("json", self.topic, None)
        data.load(
            self.config.bootstrap_servers,
            self.topic,
            o.partitions,
            data.values(encode, 0, o.records),
        )

    def settings(self, name: str) -> tuple[Path, sink.Target]:
        table = f"scaleout_{name}_{self.run_id}".replace("-", "_")
        mapping = bench_kusto.create_table(self.kusto, DB, table, "json")
        target = sink.Target(
            self.config.bootstrap_servers,
            self.config.kusto_url,
            None,
            self.topic,
            DB,
            table,
            "json",
            mapping,
        )
        case = sink.Case(flush_size_bytes=self.options.flush_size_bytes)
        path = sink.write_settings(self.workdir, f"scaleout-{self.run_id}-{name}", target, case)
        return path, target

    def executor(self, workers: int) -> Case:
        path, target = self.settings(f"executor{workers}")
        result = sink.drain(path, target, self.kusto, self.options.records, workers=workers)
        return self.checked("executor", workers, result.seconds, path, target)

    def run_workers(self, workers: int, postgres_url: str) -> Case:
        path, target = self.settings(f"runs{workers}")
        name = load_settings(str(path)).name
        home = self.workdir / f"runs{workers}-dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text((REPO / "dagster_postgres.yaml").read_text())
        database = postgres.create_database(postgres_url, f"scaleout_{self.run_id}_{workers}")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_URL": database,
            "KUSTO_SINK_CONFIG": str(path),
        }
        with SinkRuntime(load_settings(str(path))) as runtime:
            groups = split(runtime.plan(), workers)
        # The instance's tables, made once: run workers starting together on an empty
        # database race to create them (seen: a duplicate-key error from one worker).
        subprocess.run(
            [sys.executable, "-c", "import dagster; dagster.DagsterInstance.get()"],
            env=env,
            check=True,
            capture_output=True,
        )
        # Timed from the workers' start, as the drain is timed from its command's start; the
        # plan above is one broker round trip.
        began = time.monotonic()
        started = [self.start_run(home, env, name, i, group) for i, group in enumerate(groups)]
        for process, log in started:
            if process.wait(WORKER_TIMEOUT_S) != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"run worker failed ({process.returncode}); {log}:\n{tail}")
        return self.checked("run workers", workers, time.monotonic() - began, path, target)

    def start_run(
        self, home: Path, env: dict[str, str], name: str, index: int, ranges: list[OffsetRange]
    ) -> tuple[subprocess.Popen[bytes], Path]:
        config = home / f"run-{index}.yaml"
        # One process per run worker: its steps run one after another inside it.
        config.write_text(yaml.safe_dump(run_config(ranges)))
        command = [str(Path(sys.executable).with_name("dagster")), "job", "execute"]
        command += ["-m", "pipelines.definitions", "-a", "defs", "-j", "deliver_ranges"]
        command += ["-c", str(config), "--tags", json.dumps(run_tags(name, ranges))]
        log = home / f"run-{index}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        return process, log

    def checked(
        self, mode: str, workers: int, seconds: float, path: Path, target: sink.Target
    ) -> Case:
        answer = self.kusto.execute_query(
            DB, f"{target.table} | summarize rows=count(), ids=dcount(id)"
        )
        counts = answer.primary_results[0][0]
        with SinkRuntime(load_settings(str(path))) as runtime:
            committed = runtime.plan() == []
        case = Case(mode, workers, seconds, int(counts["rows"]), int(counts["ids"]), committed)
        self.say(
            f"  {mode}, {workers} worker(s): {self.options.records / seconds:,.0f} records/s "
            f"in {seconds:.1f}s; {case.rows:,} rows, {case.distinct_ids:,} distinct ids, "
            f"{'all' if committed else 'NOT all'} partitions committed"
        )
        return case


def run(config: stack.StackConfig, options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """Every mode × worker count; returns the results and writes them under ``out_dir``."""
    started = dt.datetime.now(dt.UTC)
    bench = ScaleOut(config, options, say)
    bench.load()
    load_before = [round(x, 2) for x in os.getloadavg()]
    cases: list[Case] = []
    with postgres.temporary_postgres() as postgres_url:
        for workers in options.workers:
            if "executor" in options.modes:
                cases.append(bench.executor(workers))
            if "run workers" in options.modes:
                cases.append(bench.run_workers(workers, postgres_url))
    results = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.scaleout", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "topic": {"records": options.records, "partitions": options.partitions},
        "cases": [case.row(options.records) for case in cases],
    }
    stem = f"{started.strftime('%Y-%m-%dT%H%M%SZ')}-scaleout"
    results["files"] = {k: str(p) for k, p in write(results, options.out_dir, stem).items()}
    return results


def write(results: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["md"].write_text(markdown(results))
    plot(results, paths["png"])
    return paths


def markdown(results: dict[str, Any]) -> str:
    machine, topic = results["machine"], results["topic"]
    lines = [
        f"# Scale-out, {results['date']}",
        "",
        f"{topic['records']:,} JSON records in {topic['partitions']} partitions; "
        f"{machine['cpus']} CPUs, load average {machine['load_before']} before, "
        f"{machine['load_after']} after. Command: `{results['command']}`",
        "",
        "| mode | workers | seconds | records/s | rows | distinct ids | duplicates | lost "
        "| committed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in results["cases"]:
        lines.append(
            f"| {c['mode']} | {c['workers']} | {c['seconds']} | {c['records_per_s']:,} "
            f"| {c['rows']:,} | {c['distinct_ids']:,} | {c['duplicates']} | {c['lost']} "
            f"| {'yes' if c['committed'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode in MODES:
        rows = sorted(
            (c for c in results["cases"] if c["mode"] == mode), key=lambda c: c["workers"]
        )
        if rows:
            ax.plot(
                [c["workers"] for c in rows],
                [c["records_per_s"] / 1000 for c in rows],
                marker="o",
                label=mode,
            )
    topic = results["topic"]
    ax.set_xlabel("worker processes")
    ax.set_ylabel("thousand records/s")
    ax.set_title(f"{topic['records']:,} records, {topic['partitions']} partitions, exactly once")
    ax.set_xticks(sorted({c["workers"] for c in results["cases"]}))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drain one topic with 1, 2, 4 worker processes")
    parser.add_argument("--records", type=int, default=Options.records)
    parser.add_argument("--partitions", type=int, default=Options.partitions)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help="executor, run workers")
    parser.add_argument("--flush-mb", type=int, default=Options.flush_size_bytes >> 20)
    parser.add_argument("--out", type=Path, default=Options.out_dir)
    parser.add_argument("--workdir", type=Path, default=Options.workdir)
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {MODES}")
    options = Options(
        records=args.records,
        partitions=args.partitions,
        workers=tuple(int(w) for w in args.workers.split(",") if w),
        modes=modes,
        flush_size_bytes=args.flush_mb << 20,
        out_dir=args.out,
        workdir=args.workdir,
    )

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    config = stack.StackConfig.from_env()
    servers = stack.up(config, report=say)
    try:
        results = run(config, options, say)
    finally:
        if servers:
            stack.down(config, only=servers, report=say)
    for kind, path in results["files"].items():
        say(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
