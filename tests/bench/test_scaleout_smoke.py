"""bench/scaleout.py with tiny sizes: both ways of scaling out drain everything exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scaleout
from devstack import postgres
from devstack.stack import StackConfig
from pipelines.plan import OffsetRange

pytestmark = pytest.mark.stack


def test_ranges_are_dealt_to_workers_without_empty_runs():
    ranges = [OffsetRange("t", p, 0, 10) for p in range(5)]
    groups = scaleout.split(ranges, 2)
    assert [[r.partition for r in g] for g in groups] == [[0, 2, 4], [1, 3]]
    assert len(scaleout.split(ranges[:1], 4)) == 1


# 29 s at load average 3; five processes start Dagster here, which on a machine loaded
# by other suites takes minutes.
@pytest.mark.timeout(900)
def test_two_workers_both_ways_deliver_each_record_once(stack: StackConfig, tmp_path: Path):
    if postgres.binaries() is None:
        pytest.fail("PostgreSQL binaries not found: apt-get install -y postgresql")
    options = scaleout.Options(
        records=600,
        partitions=4,
        workers=(2,),
        out_dir=tmp_path / "results",
        workdir=tmp_path / "work",
    )
    results = scaleout.run(stack, options, lambda text: None)

    cases = {case["mode"]: case for case in results["cases"]}
    assert set(cases) == {"executor", "run workers"}
    for case in cases.values():
        assert (case["rows"], case["distinct_ids"], case["committed"]) == (600, 600, True), case
    files = {kind: Path(path) for kind, path in results["files"].items()}
    assert json.loads(files["json"].read_text())["cases"] == results["cases"]
    assert "| run workers | 2 |" in files["md"].read_text()
    assert files["png"].stat().st_size > 0
