"""Committing a range: compare-and-set of the sink group's offset, dead letters included.

Exactly-once mode commits through a Kafka transaction: the range's dead letters and its
offset commit succeed or vanish together, and the producer's ``transactional.id`` (one per
sink and topic-partition) fences a zombie run that wakes up late. Before either mode moves
an offset it checks that the committed offset is still the range's start (or that nothing
readable lies between the two), and never overwrites one that moved: two runs racing on a
range cannot both commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipelines.errors import CommitConflict, SinkError, TerminalError
from pipelines.plan import OffsetRange
from pipelines.read import kafka_error
from pipelines.records import DeadLetter

log = logging.getLogger(__name__)

T = TypeVar("T")

# Kafka Connect's dead-letter context headers, so tools written for the reference sink's
# dead-letter topics read ours too; Connect has none for the record's timestamp.
SOURCE_TOPIC_HEADER = "__connect.errors.topic"
SOURCE_PARTITION_HEADER = "__connect.errors.partition"
SOURCE_OFFSET_HEADER = "__connect.errors.offset"
ERROR_CLASS_HEADER = "__connect.errors.exception.class.name"
ERROR_MESSAGE_HEADER = "__connect.errors.exception.message"
SOURCE_TIMESTAMP_HEADER = "kusto.sink.source.timestamp"

_FENCING_CODES = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


# What a plain commit gets from the broker while other consumers are members of the group.
_MEMBER_CODES = frozenset({KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION})


class SinkFenced(TerminalError):
    """Another sink instance with the same transactional id took over this partition."""


def transactional_id(sink_name: str, topic: str, partition: int) -> str:
    """One transactional id per sink and topic-partition: a newer run fences older ones."""
    return f"kusto-sink-{sink_name}-{topic}-{partition}"


def dead_letter_headers(dead_letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    """The record's own headers, unchanged, then where it came from and why it failed."""
    record, error = dead_letter.record, dead_letter.error
    return [
        *(record.headers() or []),
        (SOURCE_TOPIC_HEADER, record.topic() or ""),
        (SOURCE_PARTITION_HEADER, str(record.partition())),
        (SOURCE_OFFSET_HEADER, str(record.offset())),
        (SOURCE_TIMESTAMP_HEADER, str(record.timestamp()[1])),
        (ERROR_CLASS_HEADER, f"{type(error).__module__}.{type(error).__qualname__}"),
        (ERROR_MESSAGE_HEADER, str(error)),
    ]


class OffsetCommitter:
    """Commits ranges of one topic-partition for the sink's consumer group.

    With a ``transactional_id``, construction starts fencing every older producer with that
    id (``init_transactions``) on a thread of its own, so a delivery reads while the broker
    answers; :meth:`fence` waits for it, and :meth:`commit` does before its first
    transaction. A runtime keeps one committer per partition for all its deliveries, so a
    process initialises each transactional id once; a later instance's fence makes this
    one's next commit fail with :class:`SinkFenced`, and the delivery after that (see
    :meth:`prepare`) fences in turn. Without a ``transactional_id`` only :meth:`start_at`
    works.
    The consumer never subscribes: it reads committed offsets and lends its group metadata
    to the transaction.
    """

    def __init__(
        self,
        kafka_config: dict[str, str],
        *,
        group_id: str,
        transactional_id: str | None,
        timeout_s: float = 30.0,
    ) -> None:
        self._kafka_config = kafka_config
        self._group_id = group_id
        self._timeout_s = timeout_s
        self._transactional_id = transactional_id
        self._producer: Producer | None = None
        self._initialising: Future[Producer] | None = None
        # prepare() may run on the thread reading the next range while this one commits.
        self._state = threading.RLock()
        self._consumer = Consumer(
            {
                **kafka_config,
                "group.id": group_id,
                "enable.auto.commit": False,
                # Makes committed() wait out offsets of transactions still being committed
                # (KIP-447 stable offsets) instead of returning the older offset.
                "isolation.level": "read_committed",
            }
        )
        # After the consumer: a failing constructor must leave no producer thread behind.
        self.prepare()

    def prepare(self) -> None:
        """A delivery begins: start fencing older instances unless this committer's producer
        holds the transactional id already (it lost it only after a fatal error)."""
        with self._state:
            idle = self._producer is None and self._initialising is None
            if self._transactional_id is not None and idle:
                self._initialising = _in_background(self._initialised_producer)

    def fence(self) -> Producer:
        """The transactional producer, once it holds the id and older instances are fenced.

        Raises the initialisation's error (transient when the broker is out of reach);
        the next call tries again.
        """
        if self._transactional_id is None:
            raise TypeError("committing needs a transactional_id")
        with self._state:
            if self._producer is None:
                initialising, self._initialising = self._initialising, None
                if initialising is not None:
                    self._producer = initialising.result()
                else:
                    self._producer = self._initialised_producer()
            return self._producer

    def _initialised_producer(self) -> Producer:
        tid = self._transactional_id
        producer = Producer({**self._kafka_config, "transactional.id": tid})
        self._call(
            f"initialising transactional.id={tid}",
            None,
            None,
            lambda: producer.init_transactions(self._timeout_s),
        )
        return producer

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of a partition, ``None`` when nothing is committed."""
        (tp,) = self._call(
            "reading the committed offset",
            topic,
            partition,
            lambda: self._consumer.committed(
                [KafkaTopicPartition(topic, partition)], timeout=self._timeout_s
            ),
        )
        if tp.error is not None:
            raise kafka_error(
                tp.error,
                f"reading the committed offset of group={self._group_id}",
                topic,
                partition,
            )
        return tp.offset if tp.offset >= 0 else None

    def commit(self, rng: OffsetRange, dead_letters: Sequence[tuple[str, DeadLetter]] = ()) -> None:
        """Commit ``rng.end`` and write ``dead_letters`` (topic, record) in one transaction.

        Only if the committed offset is still where the range starts (see :meth:`_check`).
        Raises :class:`CommitConflict` otherwise, :class:`SinkFenced` if a newer instance
        took over, :class:`KafkaUnavailable` (after aborting) when a retry can help.
        """
        producer = self.fence()
        self._check(rng)
        metadata = self._consumer.consumer_group_metadata()

        undelivered: list[tuple[str, KafkaError]] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                undelivered.append((message.topic() or "", error))

        def transaction() -> None:
            producer.begin_transaction()
            try:
                for topic, dead_letter in dead_letters:
                    self._produce(producer, topic, dead_letter, delivered)
                producer.send_offsets_to_transaction(
                    [KafkaTopicPartition(rng.topic, rng.partition, rng.end)],
                    metadata,
                    self._timeout_s,
                )
                producer.commit_transaction(self._timeout_s)
            except KafkaException as exc:
                if exc.args[0].fatal():
                    # Fenced, or broken for good: the next delivery starts a new producer.
                    self._drop_producer()
                else:
                    self._abort(rng)
                if undelivered:
                    # librdkafka only says "message(s) failed delivery"; name topic and cause.
                    topic, error = undelivered[0]
                    doing = f"writing {len(undelivered)} dead letter(s) to topic {topic}"
                    raise kafka_error(error, doing, rng.topic, rng.partition) from exc
                raise

        self._call(
            f"committing offsets [{rng.start},{rng.end})", rng.topic, rng.partition, transaction
        )
        log.info(
            "committed %s for group=%s with %d dead letters", rng, self._group_id, len(dead_letters)
        )

    def start_at(self, topic: str, partition: int, offset: int) -> bool:
        """Commit ``offset`` as where the sink starts, if the group has nothing committed.

        ``auto.offset.reset=latest`` needs this once per partition: otherwise every plan
        would start again at the moving high watermark and never read anything. Returns
        whether it committed.
        """
        if self.committed(topic, partition) is not None:
            return False
        self._commit_offset(topic, partition, offset)
        return True

    def close(self) -> None:
        self._consumer.close()
        initialising, self._initialising = self._initialising, None
        if initialising is not None:
            # Its error (already raised to the delivery, or moot now) must not mask another.
            with contextlib.suppress(SinkError, KafkaException):
                self._producer = initialising.result()
        self._drop_producer()

    def _drop_producer(self) -> None:
        with self._state:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                # Aborts a transaction a failure left open; a commit left nothing in flight.
                producer.close()
            except (KafkaException, SystemError) as exc:
                # A fenced producer fails even to close (after a fatal error confluent-kafka's
                # close() can raise SystemError); nothing of it is worth keeping, and its
                # failure must not replace the error that ended the delivery.
                log.debug("closing transactional.id=%s: %s", self._transactional_id, exc)

    def _check(self, rng: OffsetRange) -> None:
        """Refuse a commit that would move the offset back or skip records that exist.

        The committed offset must be the range's start. Or nothing readable may lie between
        the two: nothing committed yet, or an offset below the low watermark, and the range
        starting at or below it. That is how plans start from an empty group (earliest)
        or after retention deleted unread records, with no need to carry what the plan saw.
        """
        found = self.committed(rng.topic, rng.partition)
        if found == rng.start:
            return
        if found is None or found < rng.start:
            low = self._low_watermark(rng.topic, rng.partition)
            if (found is None or found < low) and rng.start <= low:
                return
        if found == rng.end:
            why = "the range was committed before (by an earlier attempt or another run)"
        elif found is not None and found > rng.start:
            why = "another run moved it past the range start"
        else:
            why = "committing would skip records that still exist"
        raise CommitConflict(
            f"group={self._group_id} found committed offset "
            f"{'none' if found is None else found}, not the range start: {why}; "
            "not overwriting",
            topic=rng.topic,
            partition=rng.partition,
            start=rng.start,
            end=rng.end,
            committed=found,
        )

    def _low_watermark(self, topic: str, partition: int) -> int:
        low, _ = self._call(
            "reading the low watermark",
            topic,
            partition,
            lambda: self._consumer.get_watermark_offsets(
                KafkaTopicPartition(topic, partition), timeout=self._timeout_s, cached=False
            ),
        )
        return int(low)

    def _commit_offset(self, topic: str, partition: int, offset: int) -> None:
        tps = self._call(
            f"committing offset {offset}",
            topic,
            partition,
            lambda: self._consumer.commit(
                offsets=[KafkaTopicPartition(topic, partition, offset)], asynchronous=False
            ),
        )
        for tp in tps or []:
            if tp.error is not None:
                raise kafka_error(
                    tp.error,
                    f"committing offset {offset} of group={self._group_id}",
                    topic,
                    partition,
                )

    def _produce(
        self,
        producer: Producer,
        topic: str,
        dead_letter: DeadLetter,
        delivered: Callable[[KafkaError | None, Message], None],
    ) -> None:
        record = dead_letter.record
        _, timestamp = record.timestamp()
        while True:
            try:
                producer.produce(
                    topic,
                    key=record.key(),
                    value=record.value(),
                    headers=dead_letter_headers(dead_letter),
                    # The dead letter keeps the record's own time, unless it had none.
                    timestamp=timestamp if timestamp >= 0 else 0,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                # The local queue is full: let deliveries drain it, then try again.
                producer.poll(1.0)

    def _call(
        self, doing: str, topic: str | None, partition: int | None, call: Callable[[], T]
    ) -> T:
        """Run a Kafka call and translate its failure into the sink's errors."""
        try:
            return call()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() in _FENCING_CODES:
                raise SinkFenced(
                    f"{doing} failed: another sink instance with transactional.id="
                    f"{self._transactional_id} took over (topic={topic} partition={partition}); "
                    "this run must stop"
                ) from exc
            if error.code() in _MEMBER_CODES:
                raise TerminalError(
                    f"{doing} failed: group={self._group_id} has active members, and the sink "
                    "never joins its group: another consumer uses it (the Kafka Connect sink "
                    f"still running?) (topic={topic} partition={partition})"
                ) from exc
            raise kafka_error(
                error, f"{doing} of group={self._group_id}", topic, partition
            ) from exc

    def _abort(self, rng: OffsetRange) -> None:
        assert self._producer is not None
        try:
            self._producer.abort_transaction(self._timeout_s)
        except KafkaException as exc:
            # The producer is beyond repair; a new committer's init_transactions aborts
            # whatever this one left open.
            log.warning("aborting the transaction of %s failed: %s", rng, exc.args[0].str())


def _in_background(call: Callable[[], T]) -> Future[T]:
    """``call()`` on a daemon thread of its own: a broker that does not answer must not
    keep the process from exiting."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits for it
            future.set_exception(error)

    threading.Thread(target=run, name="kafka-transactions-init", daemon=True).start()
    return future
