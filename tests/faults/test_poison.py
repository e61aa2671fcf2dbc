"""Fault matrix rows 7 and 8: poison records of every kind, and behavior.on.error.

Records the decoder can tell are bad (not JSON, not UTF-8, an unknown schema id, a wrong
magic byte, a tombstone) go to the dead-letter topic; records only Kusto can tell are bad (a
CSV row with the wrong column count, a truncated Avro body) make Kusto refuse their batch,
which the sink splits until the record stands alone, then sends to the misc topic.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.kusto.data import KustoClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from e2e.e2e_helpers import create_event_table
from fault_helpers import POISON, RETRY, FaultSink, Ledger, read_topic

from devstack.stack import StackConfig
from pipelines.commit import (
    ERROR_CLASS_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TIMESTAMP_HEADER,
    SOURCE_TOPIC_HEADER,
)
from pipelines.errors import DecodeError

pytestmark = pytest.mark.stack

ORDER = {
    "type": "record",
    "name": "Order",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}],
}


def test_poison_records_of_every_kind(
    stack: StackConfig,
    kusto: KustoClient,
    kusto_db: str,
    make_topic: Callable[..., str],
    write_settings: Callable[..., Path],
    unique_name: str,
    ledger: Ledger,
) -> None:
    json_topic, csv_topic, avro_topic = (make_topic(partitions=1) for _ in range(3))
    dlq, misc = make_topic(partitions=1), make_topic(partitions=1)
    create_event_table(kusto, kusto_db, "Events")
    kusto.execute_mgmt(kusto_db, ".create table Rows (id:long, item:string, amount:real)")
    kusto.execute_mgmt(kusto_db, ".create table Orders (id:long, item:string)")
    avro_mapping = json.dumps([{"column": c, "Properties": {"Field": c}} for c in ("id", "item")])
    kusto.execute_mgmt(
        kusto_db, f".create table Orders ingestion avro mapping 'orders_avro' '{avro_mapping}'"
    )

    flush = 8_000
    big = json.dumps({"id": ledger.ids(1)[0], "kind": "x" * (2 * flush)}).encode()
    json_records = ledger.events(100) + POISON + [(big, json.loads(big)["id"])]
    json_records += ledger.events(50)
    ledger.produce(json_topic, json_records)

    csv_ids = ledger.ids(120)
    csv_records: list[tuple[bytes | None, int | None]] = [
        (f"{i},item{i},{i * 0.5}".encode(), i) for i in csv_ids
    ]
    csv_records[60] = (f"{csv_ids[60]},one,2.5,column too many".encode(), None)
    ledger.produce(csv_topic, csv_records)

    registry = SchemaRegistryClient({"url": stack.registry_url})
    serialize = AvroSerializer(registry, json.dumps(ORDER))
    context = SerializationContext(avro_topic, MessageField.VALUE)
    avro_ids = ledger.ids(80)
    avro_records: list[tuple[bytes | None, int | None]] = [
        (serialize({"id": i, "item": f"item{i}"}, context), i) for i in avro_ids
    ]
    good = avro_records[0][0]
    assert good is not None
    body = good[5:]
    avro_records[20] = (b"\x00" + struct.pack(">I", 999_999) + body, None)  # unknown schema id
    avro_records[40] = (b"\x07" + good[1:], None)  # wrong magic byte
    avro_records[60] = (good[:5] + body[:1], None)  # truncated payload
    avro_records[70] = (good[:3], None)  # truncated header
    ledger.produce(avro_topic, avro_records)

    mappings: list[dict[str, Any]] = [
        {
            "topic": json_topic,
            "db": kusto_db,
            "table": "Events",
            "format": "multijson",
            "mapping": "events_json",
            "tombstones": "dead_letter",
            "value_converter": {"kind": "json"},
        },
        {"topic": csv_topic, "db": kusto_db, "table": "Rows", "format": "csv"},
        {
            "topic": avro_topic,
            "db": kusto_db,
            "table": "Orders",
            "format": "avro",
            "mapping": "orders_avro",
            "value_converter": {"kind": "avro", "schema_registry_url": stack.registry_url},
        },
    ]
    path = write_settings(
        unique_name,
        mappings,
        flush_size_bytes=flush,
        behavior_on_error="log",
        retry=RETRY,
        dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": dlq},
        misc_dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": misc},
    )
    sink = FaultSink(
        path, [json_topic, csv_topic, avro_topic], ["Events", "Rows", "Orders"], [dlq, misc]
    )
    sink.deliver_all()

    with sink.runtime() as runtime:
        row = ledger.check(
            "7. poison records of every kind", sink.tables, sink.dead_letter_topics, runtime
        )
    decoded_bad = len(POISON) + 3  # JSON poison; unknown id, wrong magic, short header
    refused_by_kusto = 2  # the CSV row and the truncated Avro body
    assert len(read_topic(stack, dlq)) == decoded_bad
    assert len(read_topic(stack, misc)) == refused_by_kusto
    assert row["in_dlq"] == decoded_bad + refused_by_kusto


@pytest.mark.parametrize("on_error", ["fail", "log", "ignore"])
def test_each_behavior_on_error_on_the_same_poison_mix(
    fault_sink, ledger: Ledger, on_error: str, caplog: pytest.LogCaptureFixture
) -> None:
    sink: FaultSink = fault_sink(partitions=1, behavior_on_error=on_error)
    ledger.produce(sink.topics[0], ledger.events(100) + POISON + ledger.events(100))
    first_bad = 100

    with caplog.at_level(logging.WARNING, logger="pipelines.deliver"):
        if on_error == "fail":
            with pytest.raises(DecodeError) as stopped:
                sink.deliver_all()
            assert stopped.value.offset == first_bad
        else:
            sink.deliver_all()

    warned = [r.getMessage() for r in caplog.records if "dead-lettering" in r.getMessage()]
    with sink.runtime() as runtime:
        row = ledger.check(
            f"8. behavior.on.error={on_error} on the poison mix",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
            fully_committed=on_error != "fail",
        )
    if on_error == "fail":
        assert row["uncommitted"] == row["produced"], "nothing is committed past the bad record"
        assert row["in_dlq"] == 0 and warned == []
        return
    assert row["in_dlq"] == len(POISON)
    if on_error == "log":
        assert len(warned) == len(POISON)
        assert all(f"offset={first_bad + i}" in warned[i] for i in range(len(POISON)))
    else:
        assert warned == []
    _assert_dead_letters_keep_the_record(ledger.stack, sink)


def _assert_dead_letters_keep_the_record(stack: StackConfig, sink: FaultSink) -> None:
    """Key, value and headers byte for byte, plus where it came from and why."""
    source = {m.offset(): m for m in read_topic(stack, sink.topics[0])}
    for letter in read_topic(stack, sink.dead_letter_topics[0]):
        headers = letter.headers() or []
        named = dict(headers)
        original = source[int(named[SOURCE_OFFSET_HEADER])]
        assert letter.key() == original.key()
        assert letter.value() == original.value()
        assert headers[: len(original.headers() or [])] == original.headers()
        assert named[SOURCE_TOPIC_HEADER] == sink.topics[0].encode()
        assert named[SOURCE_PARTITION_HEADER] == b"0"
        assert named[SOURCE_TIMESTAMP_HEADER] == str(original.timestamp()[1]).encode()
        assert named[ERROR_CLASS_HEADER].startswith(b"pipelines.")
