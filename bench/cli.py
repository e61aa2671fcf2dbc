"""``kusto-sink bench``: the benchmark against the local stack (started if not running)."""

from __future__ import annotations

from pathlib import Path

import click


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _words(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.command()
@click.option("--records", default=1_000_000, show_default=True, help="Records per format")
@click.option("--partitions", default=2, show_default=True, help="Partitions per format topic")
@click.option("--formats", default="json,csv,avro", show_default=True, help="Formats measured")
@click.option(
    "--mode-formats",
    default="json",
    show_default=True,
    help="Formats also drained at-least-once and streaming",
)
@click.option(
    "--phases",
    default="throughput,freshness,scaling,memory",
    show_default=True,
    help="Phases to run",
)
@click.option("--flush-mb", default=100, show_default=True, help="Flush size of the drains")
@click.option("--freshness-rate", default=1000, show_default=True, help="Records/s produced")
@click.option("--freshness-seconds", default=60.0, show_default=True, help="Production time")
@click.option(
    "--freshness-flush-interval-ms",
    default=10_000,
    show_default=True,
    help="flush_interval_ms of the freshness sink (its interval sensor's tick)",
)
@click.option(
    "--scale-records", default=1_000_000, show_default=True, help="Records per scaling run"
)
@click.option("--scale-partitions", default="1,2,4,8", show_default=True)
@click.option("--scale-workers", default="1,2", show_default=True)
@click.option("--memory-records", default=1_000_000, show_default=True)
@click.option("--flush-sizes-mb", default="1,16,64,256", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench/results"),
    show_default=True,
    help="Where <date>.json, .md and .png go",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/kusto-sink-bench"),
    show_default=True,
    help="Settings, staging files, Dagster instances and logs of the runs",
)
@click.option(
    "--profile", is_flag=True, help="pyinstrument profile of each in-process run, as text"
)
@click.option("--keep-stack", is_flag=True, help="Leave servers this command started running")
def bench(
    records: int,
    partitions: int,
    formats: str,
    mode_formats: str,
    phases: str,
    flush_mb: int,
    freshness_rate: int,
    freshness_seconds: float,
    freshness_flush_interval_ms: int,
    scale_records: int,
    scale_partitions: str,
    scale_workers: str,
    memory_records: int,
    flush_sizes_mb: str,
    out_dir: Path,
    workdir: Path,
    profile: bool,
    keep_stack: bool,
) -> None:
    """Measure the sink against the bare-consumer limit on the local stack (see bench/)."""
    from bench.report import ratios
    from bench.run import PHASES, Options, run
    from devstack import stack

    chosen = _words(phases)
    unknown = set(chosen) - set(PHASES)
    if unknown:
        raise click.BadParameter(
            f"unknown phase(s) {', '.join(sorted(unknown))}", param_hint="--phases"
        )
    options = Options(
        records=records,
        partitions=partitions,
        formats=_words(formats),
        mode_formats=_words(mode_formats),
        phases=chosen,
        flush_size_bytes=flush_mb << 20,
        freshness_rate=freshness_rate,
        freshness_seconds=freshness_seconds,
        freshness_flush_interval_ms=freshness_flush_interval_ms,
        scale_records=scale_records,
        scale_partitions=_ints(scale_partitions),
        scale_workers=_ints(scale_workers),
        memory_records=memory_records,
        flush_sizes_mb=_ints(flush_sizes_mb),
        profile=profile,
        out_dir=out_dir,
        workdir=workdir,
    )
    config = stack.StackConfig.from_env()
    started = stack.up(config, report=click.echo)
    try:
        results = run(config, options, click.echo)
    finally:
        if started and not keep_stack:
            stack.down(config, only=started, report=click.echo)
    for line in ratios(results):
        click.echo(line)
    for kind, path in results["files"].items():
        click.echo(f"{kind}: {path}")
