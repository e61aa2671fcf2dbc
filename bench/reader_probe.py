"""How fast a bare consumer reads a topic, with the sink's fetch settings or librdkafka's.

Two measurements on an existing topic (a bench topic, say):

- ``read``: all partitions assigned at once, ``--records`` consumed in 1 000-record calls;
- ``assign``: one partition at a time, each read to its end as the sink reads ranges:
  seconds from ``assign()`` to the first record, per partition.

    python -m bench.reader_probe --topic bench-1a2b3c-json --records 1000000
    python -m bench.reader_probe --topic bench-1a2b3c-json --records 1000000 --librdkafka
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka import Consumer, TopicPartition

from bench.limit import LIBRDKAFKA_FETCH
from bench.limit import reader as limit_reader
from devstack.stack import StackConfig
from pipelines.read import READER_DEFAULTS


def read(reader: Consumer, topic: str, partitions: int, records: int) -> float:
    reader.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    began, seen = time.perf_counter(), 0
    while seen < records:
        seen += sum(m.error() is None for m in reader.consume(num_messages=1000, timeout=1.0))
    return time.perf_counter() - began


def first_records(reader: Consumer, topic: str, partitions: int) -> list[float]:
    """Per partition, read whole as the sink reads a range: seconds to its first record."""
    highs = [
        reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in range(partitions)
    ]
    waits = []
    for partition, high in enumerate(highs):
        reader.assign([TopicPartition(topic, partition, 0)])
        began, first, position = time.perf_counter(), None, 0
        while position < high:
            records = [m for m in reader.consume(num_messages=1000, timeout=1.0) if not m.error()]
            if records:
                first = first if first is not None else time.perf_counter() - began
                position = (records[-1].offset() or 0) + 1
        waits.append(first or 0.0)
        reader.unassign()
    return waits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_probe")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--librdkafka", action="store_true", help="librdkafka's fetch settings")
    args = parser.parse_args(argv)
    override = LIBRDKAFKA_FETCH if args.librdkafka else None
    settings = {**READER_DEFAULTS, **(override or {})}
    reader = limit_reader(StackConfig.from_env().bootstrap_servers, "reader-probe", override)
    try:
        meta = reader.list_topics(args.topic, timeout=10).topics[args.topic]
        partitions = len(meta.partitions)
        seconds = read(reader, args.topic, partitions, args.records)
        reader.unassign()
        waits = first_records(reader, args.topic, partitions)
    finally:
        reader.close()
    firsts = " ".join(f"{w:.3f}" for w in waits)
    sys.stdout.write(
        f"fetch settings {settings}\n"
        f"read {args.records:,} records of {partitions} partition(s) in {seconds:.2f} s\n"
        f"first record after assign(), per partition, s: {firsts}\n"
    )


if __name__ == "__main__":
    main()
