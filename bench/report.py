"""The benchmark's outputs: results JSON, a Markdown table, and a PNG of throughput and latency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.limit import UNTUNED


def write(results: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "plot": out_dir / f"{stem}.png",
    }
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["markdown"].write_text(markdown(results))
    plot(results, paths["plot"])
    return paths


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"# kusto-sink benchmark, {results['date']}",
        "",
        f"{machine['cpus']} CPUs, load average {machine['load_before']} before and "
        f"{machine['load_after']} after (the machine is shared: figures vary run to run). "
        f"Command: `{results['command']}`",
        "",
    ]
    throughput = results.get("throughput", [])
    if throughput:
        lines += [
            "## Throughput (same records for every row of a format)",
            "",
            "| format | run | records | seconds | records/s | MB/s | vs limit | first row s "
            "| all rows s | peak RSS MB (drain / step) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in throughput:
            rss = row.get("peak_rss_mb") or {}
            rss_text = f"{_num(rss.get('drain'))} / {_num(rss.get('step'))}" if rss else "-"
            lines.append(
                f"| {row['format']} | {row['run']} | {row['records']:,} | "
                f"{row['seconds']:.1f} | {_num(row['records_per_s'])} | "
                f"{_num(row['mb_per_s'], 1)} | {_num(row.get('vs_limit'), 2)} | "
                f"{_num(row.get('first_row_s'), 1)} | {_num(row.get('all_rows_s'), 1)} | "
                f"{rss_text} |"
            )
        lines += ["", *(f"- {line}" for line in ratios(results)), ""]
    metered = [r for r in throughput if r.get("cpu_s")]
    if metered:
        parts = sorted({part for r in metered for part in r["cpu_s"]} - {"measured"})
        lines += [
            "## Where the CPU went (CPU seconds while each run ran; 'measured' is the limit's "
            "loop, the in-process sink or the drain process with its children)",
            "",
            "| format | run | seconds | measured | " + " | ".join(parts) + " | total |",
            "|---|---|---:|---:|" + "---:|" * len(parts) + "---:|",
        ]
        for row in metered:
            cpu = row["cpu_s"]
            lines.append(
                f"| {row['format']} | {row['run']} | {row['seconds']:.1f} | "
                f"{_num(cpu.get('measured'), 1)} | "
                + " | ".join(_num(cpu.get(part), 1) for part in parts)
                + f" | {_num(sum(cpu.values()), 1)} |"
            )
        lines.append("")
    timed = [r for r in throughput if r.get("timeline")]
    if timed:
        lines += [
            "## Where a drain's time goes (Dagster event log)",
            "",
            "| format | run | total s | before first run s | step process start s (mean, max) "
            "| deliver step s (max) | after last run s |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in timed:
            t = row["timeline"]
            spawn, work = t["step_process_start_s"], t["deliver_step_s"]
            lines.append(
                f"| {row['format']} | {row['run']} | {row['seconds']:.1f} | "
                f"{_num(t['before_first_run_s'], 1)} | {_num(spawn['mean'], 1)}, "
                f"{_num(spawn['max'], 1)} | {_num(work['max'], 1)} | "
                f"{_num(t['after_last_run_s'], 1)} |"
            )
        lines.append("")
    if results.get("freshness"):
        lines += [
            "## Freshness (Kusto queryable − Kafka timestamp, sensors under dagster-daemon)",
            "",
            "| mode | rate/s | produced | seen | p50 s | p95 s | p99 s | warm-up s | runs "
            "| run launch s (mean, max) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["freshness"]:
            runs = row.get("runs") or {}
            launch = runs.get("launch_s") or {}
            lines.append(
                f"| {row['mode']} | {row['rate']} | {row['produced']:,} | {row['seen']:,} | "
                f"{_num(row['p50_s'], 1)} | {_num(row['p95_s'], 1)} | {_num(row['p99_s'], 1)} | "
                f"{_num(row.get('warmup_s'), 1)} | {runs.get('runs', '-')} | "
                f"{_num(launch.get('mean'), 1)}, {_num(launch.get('max'), 1)} |"
            )
        lines.append("")
    if results.get("scaling"):
        lines += [
            "## Scaling (exactly-once queued drain, JSON)",
            "",
            "| partitions | workers | records | seconds | records/s | in runs s "
            "| records/s in runs | cores busy (of the machine's, on average) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["scaling"]:
            in_runs = (row.get("timeline") or {}).get("in_runs_s")
            lines.append(
                f"| {row['partitions']} | {row['workers']} | {row['records']:,} | "
                f"{row['seconds']:.1f} | {_num(row['records_per_s'])} | {_num(in_runs, 1)} | "
                f"{_num(row.get('in_runs_records_per_s'))} | {_num(row.get('cores_busy'), 2)} |"
            )
        lines.append("")
    if results.get("memory"):
        lines += [
            "## Memory by flush size (exactly-once queued drain, JSON)",
            "",
            "| flush MB | batches | seconds | peak RSS drain MB | peak RSS step MB |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in results["memory"]:
            rss = row["peak_rss_mb"]
            lines.append(
                f"| {row['flush_mb']} | {row.get('batches', '-')} | {row['seconds']:.1f} | "
                f"{_num(rss.get('drain'))} | {_num(rss.get('step'))} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    throughput = results.get("throughput", [])
    ax = axes[0]
    formats = sorted({r["format"] for r in throughput})
    runs = list(dict.fromkeys(r["run"] for r in throughput))
    width = 0.8 / max(1, len(runs))
    for j, run in enumerate(runs):
        xs, ys = [], []
        for i, fmt in enumerate(formats):
            found = [r for r in throughput if r["format"] == fmt and r["run"] == run]
            if found:
                xs.append(i + j * width)
                ys.append(found[0]["records_per_s"] / 1000)
        ax.bar(xs, ys, width, label=run)
    ax.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(formats))], formats)
    ax.set_ylabel("thousand records/s")
    ax.set_title("Throughput: limit vs sink")
    if throughput:
        ax.legend(fontsize=7)

    ax = axes[1]
    scaling = results.get("scaling", [])
    for workers in sorted({r["workers"] for r in scaling}):
        rows = sorted(
            (r for r in scaling if r["workers"] == workers), key=lambda r: r["partitions"]
        )
        line = ax.plot(
            [r["partitions"] for r in rows],
            [r["records_per_s"] / 1000 for r in rows],
            marker="o",
            label=f"{workers} worker(s), drain",
        )
        in_runs = [r for r in rows if r.get("in_runs_records_per_s")]
        ax.plot(
            [r["partitions"] for r in in_runs],
            [r["in_runs_records_per_s"] / 1000 for r in in_runs],
            marker="s",
            linestyle="--",
            color=line[0].get_color(),
            label=f"{workers} worker(s), in runs",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("partitions")
    ax.set_ylabel("thousand records/s")
    ax.set_title("Scaling: drain throughput")
    if scaling:
        ax.legend()

    ax = axes[2]
    freshness = results.get("freshness", [])
    for k, row in enumerate(freshness):
        values = [row[f"p{p}_s"] or 0 for p in (50, 95, 99)]
        ax.bar([k * 4 + i for i in range(3)], values, label=row["mode"])
    ax.set_xticks(
        [k * 4 + i for k in range(len(freshness)) for i in range(3)],
        ["p50", "p95", "p99"] * len(freshness),
    )
    ax.set_ylabel("seconds")
    ax.set_title("Freshness: queryable − Kafka timestamp")
    if freshness:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ratios(results: dict[str, Any]) -> list[str]:
    """``json: drain exactly-once queued / limit = 0.42 (0.80 of the limit with librdkafka's
    fetch settings)`` for every sink run measured."""
    rows = results.get("throughput", [])
    untuned = {r["format"]: r["records_per_s"] for r in rows if r["run"] == UNTUNED}
    lines = []
    for row in rows:
        if "vs_limit" in row:
            line = f"{row['format']}: {row['run']} / limit = {row['vs_limit']:.2f}"
            if row["format"] in untuned:
                other = row["records_per_s"] / untuned[row["format"]]
                line += f" ({other:.2f} of the {UNTUNED})"
            lines.append(line)
    return lines
