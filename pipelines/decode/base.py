"""What every decoder shares: the protocol, dead letters, and assembling chunks.

A decoder gets one partition's records in offset order and returns the good ones as
:class:`~pipelines.records.Chunk` objects (bytes in the format Kusto ingests) and the bad
ones as :class:`~pipelines.records.DeadLetter` objects whose error names topic, partition,
offset and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipelines.errors import DecodeError, TransientError
from pipelines.records import Chunk, DeadLetter, Framing, KafkaRecord


class Decoder(Protocol):
    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        """Good records as chunks (offset order), bad ones as dead letters."""
        ...


class Tombstone(DecodeError):
    """A record without a value (a delete marker of a compacted topic): nothing to ingest.

    The caller decides, per mapping, whether to skip it or send it to the dead-letter topic.
    """


class SchemaRegistryUnavailable(TransientError):
    """The schema registry could not answer (unreachable, 5xx): retry, do not dead-letter."""


def decode_error(record: KafkaRecord, reason: str) -> DecodeError:
    return DecodeError(
        reason, topic=record.topic(), partition=record.partition(), offset=record.offset()
    )


def tombstone(record: KafkaRecord) -> DeadLetter:
    error = Tombstone(
        "tombstone: the record has no value",
        topic=record.topic(),
        partition=record.partition(),
        offset=record.offset(),
    )
    return DeadLetter(record, error)


class ChunkAssembler:
    """Collects good records into chunks of one framing, and bad ones as dead letters.

    Consecutive good records with the same framing share a chunk even when a bad record
    lies between them: chunks carry offsets, so gaps need no split.
    """

    def __init__(self, format: str) -> None:
        self._format = format
        self.chunks: list[Chunk] = []
        self.dead_letters: list[DeadLetter] = []

    def add(self, framing: Framing, offset: int, payload: bytes) -> None:
        self._chunk_for(framing).offsets.append(offset)
        self.chunks[-1].payloads.append(payload)

    def extend(self, framing: Framing, offsets: list[int], payloads: list[bytes]) -> None:
        if not offsets:
            return
        chunk = self._chunk_for(framing)
        chunk.offsets += offsets
        chunk.payloads += payloads

    def without_tombstones(
        self, records: Sequence[KafkaRecord], values: list[bytes | None]
    ) -> tuple[range | list[int], list[bytes]]:
        """Indices of the records with a value, and those values; tombstones become dead letters."""
        if None not in values:
            return range(len(values)), values  # type: ignore[return-value]
        rows = []
        for i, value in enumerate(values):
            if value is None:
                self.tombstone(records[i])
            else:
                rows.append(i)
        return rows, [values[i] for i in rows]  # type: ignore[misc]

    def add_checked(
        self,
        framing: Framing,
        records: Sequence[KafkaRecord],
        offsets: list[int],
        rows: range | list[int],
        payloads: list[bytes],
        problems: dict[int, str],
    ) -> None:
        """Add ``payloads`` of ``rows`` (indices into ``records``) except the bad ones.

        ``problems`` maps a position in ``rows`` to why that record is bad.
        """
        if not problems and rows == range(len(offsets)):
            self.extend(framing, offsets, payloads)
            return
        good = [p for p in range(len(payloads)) if p not in problems]
        self.extend(framing, [offsets[rows[p]] for p in good], [payloads[p] for p in good])
        for position, reason in problems.items():
            self.reject(records[rows[position]], reason)

    def reject(self, record: KafkaRecord, reason: str) -> None:
        self.dead_letters.append(DeadLetter(record, decode_error(record, reason)))

    def tombstone(self, record: KafkaRecord) -> None:
        self.dead_letters.append(tombstone(record))

    def result(self) -> tuple[list[Chunk], list[DeadLetter]]:
        self.dead_letters.sort(key=lambda letter: letter.record.offset() or 0)
        return self.chunks, self.dead_letters

    def _chunk_for(self, framing: Framing) -> Chunk:
        if not self.chunks or self.chunks[-1].framing != framing:
            self.chunks.append(Chunk(self._format, framing))
        return self.chunks[-1]


def values_of(records: Sequence[KafkaRecord]) -> list[bytes | None]:
    """Record values as bytes (``str`` values, from test doubles or deserializers, encoded)."""
    values = [record.value() for record in records]
    if str in map(type, values):  # a C-speed scan; the loop below runs only for test doubles
        for i, value in enumerate(values):
            if isinstance(value, str):
                values[i] = value.encode("utf-8", "surrogatepass")
    return values  # type: ignore[return-value]


def offsets_of(records: Sequence[KafkaRecord]) -> list[int]:
    offsets = [record.offset() for record in records]
    if None in offsets:
        raise ValueError("a record without an offset reached the decoder")
    return offsets  # type: ignore[return-value]


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
