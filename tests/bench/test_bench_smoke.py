"""`kusto-sink bench` end to end with tiny sizes: the same command a user runs, on the stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.stack


def test_bench_measures_limit_and_sink_and_writes_its_report(stack, tmp_path):
    command = [
        *(sys.executable, "-m", "pipelines.cli", "bench"),
        *("--records", "2000", "--partitions", "1", "--formats", "json"),
        *("--mode-formats", "", "--phases", "throughput"),
        *("--out", str(tmp_path / "results"), "--workdir", str(tmp_path / "work")),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "json: drain exactly-once queued / limit = " in done.stdout

    (results_file,) = (tmp_path / "results").glob("*.json")
    results = json.loads(results_file.read_text())
    runs = {row["run"]: row for row in results["throughput"]}
    assert set(runs) == {
        "limit",
        "limit, librdkafka's fetch settings",
        "sink in-process, exactly-once queued",
        "drain exactly-once queued",
    }
    drained = runs["drain exactly-once queued"]
    # Where the CPU went: the drain process and each server of the stack.
    assert drained["cpu_s"]["measured"] > 0 and "kusto-emulator" in drained["cpu_s"]
    assert drained["records"] == 2000 and drained["records_per_s"] > 0
    assert drained["first_row_s"] is not None
    assert drained["all_rows_s"] >= drained["first_row_s"]
    # One worker: the drain delivers in its own process, which the sampler measured.
    assert drained["peak_rss_mb"]["drain"] > 0
    assert drained["timeline"]["deliver_step_s"]["count"] == 1
    assert (tmp_path / "results" / results_file.name.replace(".json", ".png")).exists()
    assert "| json | limit | 2,000 |" in results_file.with_suffix(".md").read_text()
