"""Benchmark: how fast the Kusto emulator ingests gzipped JSON blobs.

Two measurements, both on N rows of ~200-byte JSON records cut into gzipped blobs:

- `in-process` (default): the emulator's own ingestion path (read, map, convert, insert one
  extent per blob) on a scratch DuckDB file, no servers involved;
- `--kusto-url URL`: end to end through the unmodified QueuedIngestClient against a running
  emulator (blob upload, queue message, queue worker, ingestion), timed from the first
  enqueue until every row is visible in `.show table T extents`.

    python -m bench.emulator_ingest --rows 1000000 --blobs 10
    python -m bench.emulator_ingest --rows 1000000 --blobs 10 --kusto-url http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from devstack.kusto_emulator.ingestion import IngestionRequest, ingest_file
from devstack.kusto_emulator.store import KustoStore

COLUMNS = [
    ("id", "long"),
    ("user", "string"),
    ("at", "datetime"),
    ("amount", "real"),
    ("ok", "bool"),
    ("country", "string"),
    ("device", "dynamic"),
    ("message", "string"),
]
MAPPING = [
    {"column": "id", "Properties": {"Path": "$.id"}},
    {"column": "user", "Properties": {"Path": "$.user"}},
    {"column": "at", "Properties": {"Path": "$.at"}},
    {"column": "amount", "Properties": {"Path": "$.amount"}},
    {"column": "ok", "Properties": {"Path": "$.ok"}},
    {"column": "country", "Properties": {"Path": "$.geo.country"}},
    {"column": "device", "Properties": {"Path": "$.device"}},
    {"column": "message", "Properties": {"Path": "$.message"}},
]


def write_blobs(directory: Path, rows: int, blobs: int) -> list[Path]:
    """Gzipped JSON-lines files of ~200-byte records, `rows` in all."""
    per_blob = -(-rows // blobs)
    paths = []
    for blob in range(blobs):
        first = blob * per_blob
        last = min(rows, first + per_blob)
        records = (
            orjson.dumps(
                {
                    "id": i,
                    "user": f"user-{i % 5000}",
                    "at": "2024-05-01T10:20:30.123Z",
                    "amount": (i % 1000) / 7,
                    "ok": i % 2 == 0,
                    "geo": {"country": "NL", "city": "Amsterdam"},
                    "device": {"os": "linux", "version": i % 13},
                    "message": "checkout completed for basket " + str(i).rjust(12, "0"),
                }
            )
            for i in range(first, last)
        )
        path = directory / f"batch-{blob:04d}.json.gz"
        path.write_bytes(gzip.compress(b"\n".join(records), compresslevel=1))
        paths.append(path)
    return paths


def bench_in_process(paths: list[Path], scratch: Path) -> tuple[int, float, float]:
    """Rows, wall seconds, and CPU seconds of this process (DuckDB threads included)."""
    store = KustoStore(scratch / "kusto")
    store.create_database("bench")
    store.create_table("bench", "Events", COLUMNS, merge=False)
    store.create_mapping("bench", "Events", "Json", "EventsJson", orjson.dumps(MAPPING).decode())
    request = IngestionRequest("bench", "Events", "json", mapping_reference="EventsJson")
    started, cpu_started = time.perf_counter(), time.process_time()
    total = sum(ingest_file(store, request, path).row_count for path in paths)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    store.close()
    return total, elapsed, cpu


def bench_through_sdk(paths: list[Path], kusto_url: str, expected: int) -> tuple[int, float]:
    from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
    from azure.kusto.data.data_format import DataFormat
    from azure.kusto.ingest import IngestionProperties, QueuedIngestClient

    kcsb = KustoConnectionStringBuilder.with_no_authentication(kusto_url)
    client = KustoClient(kcsb)
    ingest = QueuedIngestClient(kcsb)
    database = f"bench_{uuid.uuid4().hex[:6]}"
    client.execute_mgmt("NetDefaultDB", f".create database {database} ifnotexists")
    schema = ", ".join(f"{name}:{kind}" for name, kind in COLUMNS)
    client.execute_mgmt(database, f".create table Events ({schema})")
    mapping = orjson.dumps(MAPPING).decode()
    client.execute_mgmt(
        database, f".create table Events ingestion json mapping 'EventsJson' '{mapping}'"
    )
    properties = IngestionProperties(
        database, "Events", data_format=DataFormat.JSON, ingestion_mapping_reference="EventsJson"
    )
    started = time.perf_counter()
    for path in paths:
        ingest.ingest_from_file(str(path), properties)
    total = 0
    while total < expected:
        time.sleep(0.1)
        extents = client.execute_mgmt(database, ".show table Events extents").primary_results[0]
        total = sum(row["RowCount"] for row in extents)
    elapsed = time.perf_counter() - started
    client.execute_mgmt("NetDefaultDB", f".drop database {database}")
    ingest.close()
    client.close()
    return total, elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_ingest")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--blobs", type=int, default=10)
    parser.add_argument("--kusto-url", help="measure end to end against this running emulator")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as scratch:
        directory = Path(scratch)
        paths = write_blobs(directory, args.rows, args.blobs)
        raw_bytes = sum(len(gzip.decompress(path.read_bytes())) for path in paths)
        if args.kusto_url:
            mode = f"SDK queued ingestion via {args.kusto_url}"
            rows, elapsed = bench_through_sdk(paths, args.kusto_url, args.rows)
            cpu_note = ""
        else:
            mode = "in-process ingestion"
            rows, elapsed, cpu = bench_in_process(paths, directory)
            # On a shared machine wall time varies with load; CPU time does not.
            cpu_note = f"; {cpu:.2f} CPU s = {rows / cpu:,.0f} rows per CPU second"
    print(  # noqa: T201 - the benchmark's report
        f"{mode}: {rows} rows ({raw_bytes / rows:.0f} B/row, {len(paths)} gzipped blobs) "
        f"in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s{cpu_note}"
    )


if __name__ == "__main__":
    main()
