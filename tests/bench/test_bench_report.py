"""The benchmark's report: JSON, a Markdown table and a PNG from one results dict."""

from __future__ import annotations

import json

from bench.report import write

RESULTS = {
    "date": "2026-11-28T03:00:00+00:00",
    "command": "kusto-sink bench --records 1000",
    "machine": {"cpus": 2, "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 1.5, 1.0]},
    "throughput": [
        {
            "format": "json",
            "run": "limit",
            "records": 1000,
            "seconds": 0.01,
            "records_per_s": 100_000.0,
            "mb_per_s": 23.4,
        },
        {
            "format": "json",
            "run": "drain exactly-once queued",
            "records": 1000,
            "seconds": 0.02,
            "records_per_s": 50_000.0,
            "mb_per_s": 11.7,
            "vs_limit": 0.5,
            "first_row_s": 0.3,
            "peak_rss_mb": {"drain": 190, "step": 220},
        },
    ],
    "freshness": [
        {
            "mode": "streaming",
            "rate": 1000,
            "seconds": 60,
            "produced": 60000,
            "seen": 60000,
            "p50_s": 5.0,
            "p95_s": 9.0,
            "p99_s": 12.0,
        },
    ],
    "scaling": [
        {
            "partitions": p,
            "workers": w,
            "records": 1000,
            "seconds": 1.0,
            "records_per_s": 1000.0 * p * w,
        }
        for p in (1, 2)
        for w in (1, 2)
    ],
    "memory": [
        {"flush_mb": 1, "batches": 3, "seconds": 2.0, "peak_rss_mb": {"drain": 190, "step": 230}}
    ],
}


def test_report_writes_json_markdown_and_png(tmp_path):
    files = write(RESULTS, tmp_path, "2026-11-28T030000Z")
    assert json.loads(files["json"].read_text())["throughput"][1]["vs_limit"] == 0.5
    table = files["markdown"].read_text()
    assert "| json | drain exactly-once queued | 1,000 |" in table
    assert "| 0.50 |" in table and "190 / 220" in table
    assert "| streaming | 1000 | 60,000 | 60,000 | 5.0 | 9.0 | 12.0 |" in table
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
