"""Realistic records for the benchmark, and loading them into the local broker.

Every format carries the same event, so the figures compare like with like: an id, a user,
a timestamp, an amount, a flag, nested geo and device objects, a tag list and a short
message; about 200 bytes as JSON. JSON and CSV values are the text itself (a producer's
``StringSerializer``); Avro values are in the Confluent wire format (magic byte, 4-byte
schema id, binary body) with the schema registered under ``<topic>-value``.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from devstack import kafka

FORMATS = ("json", "csv", "avro")

# Kusto columns of the benchmark tables; the same for every format.
COLUMNS: list[tuple[str, str]] = [
    ("id", "long"),
    ("at", "datetime"),
    ("user", "string"),
    ("amount", "real"),
    ("ok", "bool"),
    ("country", "string"),
    ("device", "dynamic"),
    ("tags", "dynamic"),
    ("message", "string"),
]
JSON_PATHS = {
    "id": "$.id",
    "user": "$.user",
    "at": "$.at",
    "amount": "$.amount",
    "ok": "$.ok",
    "country": "$.geo.country",
    "device": "$.device",
    "tags": "$.tags",
    "message": "$.message",
}

AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Event",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "at", "type": "string"},
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {
            "name": "geo",
            "type": {
                "type": "record",
                "name": "Geo",
                "fields": [
                    {"name": "country", "type": "string"},
                    {"name": "city", "type": "string"},
                ],
            },
        },
        {
            "name": "device",
            "type": {
                "type": "record",
                "name": "Device",
                "fields": [
                    {"name": "os", "type": "string"},
                    {"name": "version", "type": "int"},
                ],
            },
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "message", "type": "string"},
    ],
}

_COUNTRIES = ("DE", "FR", "US", "JP", "BR", "IN", "NG", "SE")
_CITIES = ("Berlin", "Paris", "Austin", "Osaka", "Recife", "Pune", "Lagos", "Malmo")
_OS = ("ios", "android", "linux", "windows")
_WORDS = ("order", "placed", "paid", "shipped", "late", "retry", "gift", "express", "bulk")


# Distinct event bodies (all but id and timestamp) that records cycle through: building each
# of a million records from scratch in Python would take longer than the sink needs for them.
POOL_SIZE = 4096


def event(i: int, rng: random.Random) -> dict[str, Any]:
    """Event ``i``: ids are unique and increasing, the rest varies like real traffic."""
    c = rng.randrange(len(_COUNTRIES))
    return {
        "id": i,
        "at": timestamp(i),
        "user": f"user-{rng.randrange(100_000):05d}",
        "amount": round(rng.uniform(0, 5000), 2),
        "ok": rng.random() < 0.9,
        "geo": {"country": _COUNTRIES[c], "city": _CITIES[c]},
        "device": {"os": rng.choice(_OS), "version": rng.randrange(8, 18)},
        "tags": rng.sample(_WORDS, rng.randrange(0, 4)),
        "message": " ".join(rng.choices(_WORDS, k=rng.randrange(3, 9))),
    }


def timestamp(i: int) -> str:
    """A millisecond a record, from midnight: always 24 characters."""
    return (
        f"2026-11-28T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:"
        f"{i // 1000 % 60:02d}.{i % 1000:03d}Z"
    )


def _pool(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [event(i, rng) for i in range(POOL_SIZE)]


def _pick(i: int) -> int:
    # Knuth's multiplicative hash: neighbouring records get unrelated bodies.
    return (i * 2654435761) % POOL_SIZE


class JsonEvents:
    """``{"id":…,"at":…,…}`` text, compact, keys in the order of COLUMNS."""

    def __init__(self, seed: int = 8) -> None:
        # Each tail is the object after "at": `"user":…}`.
        rest = ({k: v for k, v in e.items() if k not in ("id", "at")} for e in _pool(seed))
        self._tails = [_compact(r)[1:] for r in rest]

    def __call__(self, i: int) -> bytes:
        return b'{"id":%d,"at":"%s",%s' % (i, timestamp(i).encode(), self._tails[_pick(i)])


class CsvEvents:
    """CSV rows in the column order of COLUMNS; dynamic columns as quoted JSON."""

    def __init__(self, seed: int = 8) -> None:
        self._tails = [_csv_tail(e) for e in _pool(seed)]

    def __call__(self, i: int) -> bytes:
        return b"%d,%s,%s" % (i, timestamp(i).encode(), self._tails[_pick(i)])


class AvroEvents:
    """Confluent wire-format Avro values of one registered schema id."""

    def __init__(self, schema_id: int, seed: int = 8) -> None:
        self._header = b"\x00" + struct.pack(">I", schema_id)
        parsed = fastavro.parse_schema(AVRO_SCHEMA)
        self._tails = []
        for e in _pool(seed):
            body = io.BytesIO()
            fastavro.schemaless_writer(body, parsed, e)
            # Fields are written in schema order: id (a varint), at (length 24, then text).
            prefix = len(_avro_long(e["id"])) + 1 + len(e["at"])
            self._tails.append(body.getvalue()[prefix:])

    def __call__(self, i: int) -> bytes:
        at = timestamp(i).encode()
        return b"".join(
            (self._header, _avro_long(i), _avro_long(len(at)), at, self._tails[_pick(i)])
        )


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _csv_tail(e: dict[str, Any]) -> bytes:
    def quoted(value: Any) -> bytes:
        return b'"' + _compact(value).replace(b'"', b'""') + b'"'

    ok = b"true" if e["ok"] else b"false"
    return b",".join(
        (
            e["user"].encode(),
            str(e["amount"]).encode(),
            ok,
            e["geo"]["country"].encode(),
            quoted(e["device"]),
            quoted(e["tags"]),
            e["message"].encode(),
        )
    )


def _avro_long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def register_avro(registry_url: str, topic: str) -> int:
    client = SchemaRegistryClient({"url": registry_url})
    return client.register_schema(f"{topic}-value", Schema(json.dumps(AVRO_SCHEMA), "AVRO"))


def encoder(format: str, topic: str, registry_url: str | None) -> Callable[[int], bytes]:
    """Record ``i`` of ``format``; Avro registers its schema for ``topic`` first."""
    if format == "json":
        return JsonEvents()
    if format == "csv":
        return CsvEvents()
    if format == "avro":
        if not registry_url:
            raise ValueError("Avro records need a schema registry URL")
        return AvroEvents(register_avro(registry_url, topic))
    raise ValueError(f"no benchmark data for format {format!r}")


def values(encode: Callable[[int], bytes], start: int, count: int) -> Iterator[bytes]:
    return map(encode, range(start, start + count))


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            # Large batches load a million records in seconds; latency does not matter here.
            "linger.ms": 50,
            "batch.size": 1 << 20,
            "queue.buffering.max.messages": 1_000_000,
        }
    )


def load(bootstrap: str, topic: str, partitions: int, payloads: Iterable[bytes]) -> int:
    """Create ``topic`` and produce ``payloads`` round-robin over its partitions; bytes sent."""
    kafka.create_topic(bootstrap, topic, partitions)
    out = producer(bootstrap)
    sent = 0
    for i, value in enumerate(payloads):
        while True:
            try:
                out.produce(topic, value=value, partition=i % partitions)
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                out.poll(0.05)
        sent += len(value)
        if i % 10_000 == 0:
            out.poll(0)
    if out.flush(120) != 0:
        raise RuntimeError(f"topic={topic}: records still unsent after 120 s")
    return sent
