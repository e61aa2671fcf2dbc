"""Dead-letter topics: where a range's dead letters go, exactly once.

Dead letters bound for the source cluster travel in the offset commit's Kafka transaction
(:mod:`pipelines.commit`): they and the commit succeed or vanish together. A dead-letter
topic on another cluster (or reached with other credentials) cannot join that
transaction, so :class:`ForeignDeadLetters` does what the transaction would:

1. it reads the dead-letter topic's tail for letters whose headers name this range's
   source offsets, and skips those: a crash after step 2 and before the commit left them;
2. it writes the rest with an idempotent producer (its own retries add no duplicates)
   and flushes, so every letter is stored before
3. the caller commits the source offsets.

All letters of one source partition go to one partition of the dead-letter topic (chosen
by a hash of source topic and partition), in source-offset order, so the look-up in step 1
reads that partition backwards only until it meets a letter from before the range.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipelines.commit import (
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
    dead_letter_headers,
)
from pipelines.config import KafkaConnection, kafka_client_config
from pipelines.errors import KafkaUnavailable, TerminalError
from pipelines.plan import OffsetRange
from pipelines.read import consumer_config, kafka_error, read_range
from pipelines.records import DeadLetter

log = logging.getLogger(__name__)

# Dead-letter records read per step backwards; a step ends the look-up once it holds a
# letter of this source partition from before the range.
LOOKBACK_STEP = 1_000


def same_cluster(a: KafkaConnection, b: KafkaConnection) -> bool:
    """Whether one client configuration serves both: same brokers, same credentials."""
    servers = {s.strip() for s in a.bootstrap_servers.split(",")}
    return servers == {s.strip() for s in b.bootstrap_servers.split(",")} and (
        a.security == b.security
    )


@dataclass(frozen=True)
class DeadLetterTopic:
    """A dead-letter topic of the sink and how its letters are written."""

    topic: str
    # None: the topic is on the source cluster; letters go in the commit's transaction.
    writer: ForeignDeadLetters | None = None


class ForeignDeadLetters:
    """Writes dead letters to a topic on another cluster, each source offset once."""

    def __init__(
        self, connection: KafkaConnection, topic: str, *, group_id: str, timeout_s: float = 30.0
    ) -> None:
        self.topic = topic
        self._timeout_s = timeout_s
        config = kafka_client_config(connection)
        # Idempotence: the producer's own retries after a lost acknowledgement write nothing
        # twice (it implies acks=all).
        self._producer = Producer({**config, "enable.idempotence": True})
        # Only reads the topic's tail with assigned partitions; never commits or joins.
        self._consumer = Consumer(consumer_config(config, group_id))

    def write(self, rng: OffsetRange, letters: Sequence[DeadLetter]) -> int:
        """Write the letters of ``rng`` not already in the topic and flush; returns how many
        were written."""
        if not letters:
            return 0
        partition = self._partition_for(rng)
        present = self._already_written(partition, rng)
        todo = [d for d in letters if d.record.offset() not in present]
        if len(todo) < len(letters):
            log.info(
                "%s: %d dead letter(s) already in topic=%s from an earlier attempt",
                rng,
                len(letters) - len(todo),
                self.topic,
            )
        failed: list[KafkaError] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failed.append(error)

        for letter in todo:
            record = letter.record
            _, timestamp = record.timestamp()
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        key=record.key(),
                        value=record.value(),
                        headers=dead_letter_headers(letter),
                        partition=partition,
                        timestamp=timestamp if timestamp >= 0 else 0,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    self._producer.poll(1.0)
        left = self._producer.flush(self._timeout_s)
        if failed:
            raise kafka_error(
                failed[0],
                f"writing dead letters of {rng} to topic {self.topic}",
                rng.topic,
                rng.partition,
            )
        if left:
            raise KafkaUnavailable(
                f"{left} dead letter(s) to topic {self.topic} not acknowledged within "
                f"{self._timeout_s:.0f}s",
                topic=rng.topic,
                partition=rng.partition,
            )
        return len(todo)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
        self._consumer.close()

    def _partition_for(self, rng: OffsetRange) -> int:
        try:
            metadata = self._producer.list_topics(self.topic, timeout=self._timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            raise kafka_error(error, "reading dead-letter metadata", self.topic, None) from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise TerminalError(f"dead-letter topic={self.topic} cannot be written: not found")
        key = f"{rng.topic}/{rng.partition}".encode()
        return zlib.crc32(key) % len(found.partitions)

    def _already_written(self, partition: int, rng: OffsetRange) -> set[int]:
        """Source offsets of ``rng`` that have a letter in the dead-letter partition."""
        try:
            low, high = self._consumer.get_watermark_offsets(
                KafkaTopicPartition(self.topic, partition), timeout=self._timeout_s
            )
        except KafkaException as exc:
            error = exc.args[0]
            raise kafka_error(error, "reading dead-letter watermarks", self.topic, None) from exc
        found: set[int] = set()
        end = high
        while end > low:
            start = max(low, end - LOOKBACK_STEP)
            older = False
            for records in read_range(
                self._consumer, OffsetRange(self.topic, partition, start, end)
            ):
                for record in records:
                    offset = _source_offset(record, rng)
                    if offset is None:
                        continue
                    if offset < rng.start:
                        older = True
                    elif offset < rng.end:
                        found.add(offset)
            if older:
                break
            end = start
        return found


def _source_offset(record: Message, rng: OffsetRange) -> int | None:
    """The source offset a dead letter names, if it comes from ``rng``'s partition."""
    headers = dict(record.headers() or [])
    topic, partition = headers.get(SOURCE_TOPIC_HEADER), headers.get(SOURCE_PARTITION_HEADER)
    offset = headers.get(SOURCE_OFFSET_HEADER)
    if topic != rng.topic.encode() or partition != str(rng.partition).encode() or not offset:
        return None
    return int(offset)
