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

from pipelines.read import READER_DEFAULTS

# The limit's loop with librdkafka's own fetch settings, measured beside it.
UNTUNED = "limit, librdkafka's fetch settings"


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
    # As the sink's reader: consume() waits to fill a batch, and 10 000 records span more
    # fetches than 1 000 do, so each call can wait out fetch.wait.max.ms (measured 6x slower).
    batch_size: int = 1_000,
    level: int = 1,
    idle_timeout_s: float = 30.0,
    fetch_settings: Mapping[str, str | int | bool] = READER_DEFAULTS,
) -> LimitResult:
    """Read ``records`` records of ``topic`` from offset 0 and gzip their values, one a line.

    ``fetch_settings`` are the sink's reader's by default; ``{}`` leaves librdkafka's.
    """
    consumer = Consumer(
        {
            **fetch_settings,
            "bootstrap.servers": bootstrap,
            # A throwaway group: nothing is committed, the partitions are assigned.
            "group.id": f"bench-limit-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
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
