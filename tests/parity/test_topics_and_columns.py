"""On the local stack: wildcards, Kafka metadata columns, tombstones, Parquet and ORC."""

from __future__ import annotations

import io
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.orc as pa_orc
import pyarrow.parquet as pa_parquet
import pytest
from parity_helpers import (
    NOTE_JSON_MAPPING,
    QUICKSTART_ENV,
    REFERENCE,
    drain,
    note_table,
    notes,
    read_topic,
    rows,
)

from devstack import kafka
from pipelines.config import load_settings, read_settings
from pipelines.definitions import build_definitions
from pipelines.runtime import SinkRuntime

pytestmark = pytest.mark.stack


def test_the_reference_quickstart_drains_into_the_local_stack(
    stack, kusto, kusto_db, make_topic, produce, tmp_path: Path
) -> None:
    topic = make_topic(partitions=1)
    note_table(kusto, kusto_db, "Quickstart")
    kusto.execute_mgmt(
        kusto_db,
        f".create table Quickstart ingestion json mapping 'quickstart_json_mapping' "
        f"'{NOTE_JSON_MAPPING}'",
    )
    produce(topic, notes(0, 20))
    environ = QUICKSTART_ENV | {
        "KAFKA_TOPIC": topic,
        "KUSTO_DATABASE": kusto_db,
        "KUSTO_TABLE": "Quickstart",
        "KUSTO_INGEST_URL": stack.kusto_url,
        "KUSTO_ENGINE_URL": stack.kusto_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
    }
    # The quickstart as published: its variables set for the local stack, nothing changed.
    settings = read_settings(REFERENCE / "kusto-sink-connector.json", environ=environ).settings
    drain(settings.model_copy(update={"tempdir": tmp_path}))
    assert rows(kusto, kusto_db, "Quickstart | count")[0]["Count"] == 20


def test_topics_regex_picks_up_a_new_topic_and_a_star_mapping_catches_it(
    stack, kusto, kusto_db, unique_name, produce, settings_file
) -> None:
    mapped, created_later = f"{unique_name}_orders", f"{unique_name}_late"
    kafka.create_topic(stack.bootstrap_servers, mapped, 1)
    note_table(kusto, kusto_db, "Orders")
    note_table(kusto, kusto_db, "Everything")
    mapping = {"db": kusto_db, "format": "json", "mapping": "notes"}
    path = settings_file(
        unique_name,
        [
            {"topic": mapped, "table": "Orders", **mapping},
            {"topic": "*", "table": "Everything", **mapping},
        ],
        topics_regex=f"{unique_name}_.*",
        value_converter={"kind": "json"},
    )
    produce(mapped, notes(0, 5))
    (sensor,) = [
        s for s in build_definitions(str(path)).sensors if s.name == f"{unique_name}_interval"
    ]

    def planned_topics(instance: dg.DagsterInstance) -> set[str]:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        return {
            r["topic"]
            for request in result.run_requests or []
            for r in request.run_config["ops"]["offset_ranges"]["config"]["ranges"]
        }

    with dg.instance_for_test() as instance:
        assert planned_topics(instance) == {mapped}
        kafka.create_topic(stack.bootstrap_servers, created_later, 1)
        produce(created_later, notes(100, 7))
        assert planned_topics(instance) == {mapped, created_later}  # same sensor, no restart
    drain(path)
    assert rows(kusto, kusto_db, "Orders | summarize n=count(), lo=min(id)") == [{"n": 5, "lo": 0}]
    assert rows(kusto, kusto_db, "Everything | summarize n=count(), lo=min(id)") == [
        {"n": 7, "lo": 100}
    ]


AT_MS = 1_764_288_000_123  # 2025-11-28T00:00:00.123Z


def test_key_headers_and_metadata_land_as_columns_for_json_and_csv(
    kusto, kusto_db, make_topic, produce, settings_file
) -> None:
    json_topic, csv_topic = make_topic(partitions=1), make_topic(partitions=1)
    kusto.execute_mgmt(
        kusto_db,
        ".create table JsonRows "
        "(id:long, k:string, h:dynamic, t:string, p:int, o:long, at:datetime)",
    )
    paths = {"id": "$.id", "k": "$.k", "h": "$.h", "t": "$.t", "p": "$.p", "o": "$.o", "at": "$.at"}
    json_mapping = json.dumps([{"column": c, "Properties": {"Path": p}} for c, p in paths.items()])
    kusto.execute_mgmt(
        kusto_db, f".create table JsonRows ingestion json mapping 'm' '{json_mapping}'"
    )
    kusto.execute_mgmt(
        kusto_db, ".create table CsvRows (id:long, note:string, k:string, o:long, at:datetime)"
    )
    produce(
        json_topic,
        [
            (
                f"key{i}".encode(),
                json.dumps({"id": i}).encode(),
                [("source", b"app"), ("n", str(i).encode())],
            )
            for i in range(3)
        ],
        timestamp_ms=AT_MS,
    )
    produce(
        csv_topic, [(b"csv-key", b'7,"a, b"', None), (None, b"8,plain", None)], timestamp_ms=AT_MS
    )
    every = {
        "key": "k",
        "headers": "h",
        "topic": "t",
        "partition": "p",
        "offset": "o",
        "timestamp": "at",
    }
    path = settings_file(
        json_topic,
        [
            {"topic": json_topic, "db": kusto_db, "table": "JsonRows", "format": "multijson",
             "mapping": "m", "metadata_columns": every},
            {"topic": csv_topic, "db": kusto_db, "table": "CsvRows", "format": "csv",
             "metadata_columns": {"key": "k", "offset": "o", "timestamp": "at"}},
        ],
    )  # fmt: skip
    drain(path)
    at = "2025-11-28T00:00:00.123000+00:00"
    got = rows(kusto, kusto_db, "JsonRows | order by id asc | extend at=tostring(at)")
    assert got == [
        {"id": i, "k": f"key{i}", "h": {"source": "app", "n": str(i)}, "t": json_topic, "p": 0,
         "o": i, "at": got[0]["at"]}
        for i in range(3)
    ]  # fmt: skip
    assert got[0]["at"].startswith("2025-11-28T00:00:00.123")
    got = rows(kusto, kusto_db, "CsvRows | order by id asc")
    assert [(r["id"], r["note"], r["k"], r["o"]) for r in got] == [
        (7, "a, b", "csv-key", 0),
        (8, "plain", "", 1),
    ]
    assert all(r["at"].isoformat() == at for r in got)


def test_tombstones_skipped_and_counted_or_dead_lettered(
    stack, kusto, kusto_db, make_topic, produce, settings_file
) -> None:
    skip_topic, letter_topic, dlq = (make_topic(partitions=1) for _ in range(3))
    note_table(kusto, kusto_db, "Skipped")
    note_table(kusto, kusto_db, "Lettered")
    mix = notes(0, 2) + [(b"gone", None, None)] + notes(2, 1) + [(b"gone2", None, None)]
    produce(skip_topic, mix)
    produce(letter_topic, mix)
    common = {"db": kusto_db, "format": "json", "mapping": "notes"}
    path = settings_file(
        skip_topic,
        [
            {"topic": skip_topic, "table": "Skipped", "tombstones": "skip", **common},
            {"topic": letter_topic, "table": "Lettered", "tombstones": "dead_letter", **common},
        ],
        behavior_on_error="log",
        dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": dlq},
    )
    reports = {r.range.topic: r for r in drain(path)}
    assert reports[skip_topic].tombstones_skipped == 2
    assert reports[skip_topic].dead_lettered == 0
    assert reports[letter_topic].dead_lettered == 2
    for table in ("Skipped", "Lettered"):
        assert rows(kusto, kusto_db, f"{table} | count")[0]["Count"] == 3
    letters = read_topic(stack.bootstrap_servers, dlq, 2)
    assert sorted(m.key() for m in letters) == [b"gone", b"gone2"]
    assert all(m.value() is None for m in letters)
    with SinkRuntime(load_settings(path)) as runtime:
        assert {s.committed for s in runtime.partition_states().values()} == {5}


def _table_bytes(kind: str, first: int) -> bytes:
    table = pa.table({"id": [first, first + 1], "note": [f"{kind}{first}", f"{kind}{first + 1}"]})
    out = io.BytesIO()
    (pa_parquet.write_table if kind == "parquet" else pa_orc.write_table)(table, out)
    return out.getvalue()


def test_parquet_and_orc_files_carried_as_message_bytes_land_with_their_own_mapping_kinds(
    kusto, kusto_db, make_topic, produce, settings_file
) -> None:
    mappings = []
    for kind in ("parquet", "orc"):
        topic = make_topic(partitions=1)
        table = kind.title()
        kusto.execute_mgmt(kusto_db, f".create table {table} (id:long, note:string)")
        entries = json.dumps(
            [{"column": c, "Properties": {"Path": f"$.{c}"}} for c in ("id", "note")]
        )
        kusto.execute_mgmt(
            kusto_db, f".create table {table} ingestion {kind} mapping '{kind}_map' '{entries}'"
        )
        produce(topic, [(None, _table_bytes(kind, 0), None), (None, _table_bytes(kind, 2), None)])
        mappings.append(
            {
                "topic": topic,
                "db": kusto_db,
                "table": table,
                "format": kind,
                "mapping": f"{kind}_map",
                "value_converter": {"kind": "bytes"},
            }
        )
    drain(settings_file(mappings[0]["topic"], mappings))
    for kind in ("parquet", "orc"):
        got = rows(kusto, kusto_db, f"{kind.title()} | order by id asc")
        assert got == [{"id": i, "note": f"{kind}{i}"} for i in range(4)]
