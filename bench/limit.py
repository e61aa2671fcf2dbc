"""The limit: the least any sink must do, a bare consume loop that gzips the bytes to a file.

No decoding, no batching, no Kusto: whatever the sink adds on top of this loop is its cost.
It reads exactly like the sink's reader (assigned partitions, ``read_committed``, large
``consume`` batches, the reader's fetch settings) and gzips at the level the sink uses, on
the reading thread.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from pipelines.read import consumer_config

# The limit's loop with librdkafka's own fetch settings, measured beside it.
UNTUNED = "limit, librdkafka's fetch settings"
# librdkafka's defaults of what pipelines.read.READER_DEFAULTS sets.
LIBRDKAFKA_FETCH = {"fetch.queue.backoff.ms": "1000", "fetch.wait.max.ms": "500"}


def reader(bootstrap: str, name: str, fetch_settings: Mapping[str, str] | None = None) -> Consumer:
    """A consumer configured as the sink's reader, in a throwaway group (the partitions are
    assigned, nothing is committed), ``fetch_settings`` overriding the reader's."""
    base = {"bootstrap.servers": bootstrap, **(fetch_settings or {})}
    return Consumer(consumer_config(base, f"{name}-{uuid.uuid4().hex[:8]}"))


@dataclass(frozen=True)
class LimitResult:
    records: int
    raw_bytes: int
    gzip_bytes: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.raw_bytes / self.seconds / 1e6


def consume_and_gzip(
    bootstrap: str,
    topic: str,
    partitions: int,
    records: int,
    out_file: Path,
    *,
    # As the sink's reader (pipelines.read.read_range).
    batch_size: int = 1_000,
    level: int = 1,
    idle_timeout_s: float = 30.0,
    fetch_settings: Mapping[str, str] | None = None,
) -> LimitResult:
    """Read ``records`` records of ``topic`` from offset 0 and gzip their values, one a line.

    ``fetch_settings`` override the sink's reader's (``LIBRDKAFKA_FETCH``: librdkafka's own).
    """
    consumer = reader(bootstrap, "bench-limit", fetch_settings)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    gzip = zlib.compressobj(level, zlib.DEFLATED, 31)
    seen = raw = 0
    began = idle_since = time.monotonic()
    try:
        with open(out_file, "wb") as out:
            while seen < records:
                messages = consumer.consume(num_messages=batch_size, timeout=1.0)
                values = [m.value() for m in messages if m.error() is None]
                for m in messages:
                    error = m.error()
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"topic={topic}: {error.str()}")
                if not values:
                    if time.monotonic() - idle_since > idle_timeout_s:
                        raise RuntimeError(
                            f"topic={topic}: only {seen} of {records} records after "
                            f"{idle_timeout_s:.0f} s without progress"
                        )
                    continue
                idle_since = time.monotonic()
                joined = b"\n".join(values)
                out.write(gzip.compress(joined))
                out.write(gzip.compress(b"\n"))
                seen += len(values)
                raw += len(joined) - len(values) + 1
            out.write(gzip.flush())
        seconds = time.monotonic() - began
    finally:
        consumer.close()
    return LimitResult(seen, raw, out_file.stat().st_size, seconds)
