"""The shapes records take between reading, decoding and batching.

Records stay confluent-kafka ``Message`` objects from the consumer to the decoder: copying
each into a dataclass would cost a Python call per record on the hot path. Decoders turn a
run of records into :class:`Chunk` objects, which hold the records' bytes already in the
format Kusto ingests, plus how those bytes must be framed into a batch file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


class KafkaRecord(Protocol):
    """What the sink needs of a record; ``confluent_kafka.Message`` satisfies it."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> str | bytes | None: ...
    def value(self) -> str | bytes | None: ...
    def headers(self) -> list[tuple[str, str | bytes | None]] | None: ...


@dataclass(frozen=True)
class LineFraming:
    """Text records (JSON, CSV, ...): one record a line, the file gzipped."""

    kind: Literal["lines"] = "lines"


@dataclass(frozen=True)
class AvroFraming:
    """Avro bodies sharing one writer schema: written as an Avro object container file."""

    schema_json: str
    kind: Literal["avro"] = "avro"


@dataclass(frozen=True)
class WholeFileFraming:
    """Each record is a whole file (Parquet, ORC): one blob per record, sent as is."""

    kind: Literal["whole_file"] = "whole_file"


Framing = LineFraming | AvroFraming | WholeFileFraming


@dataclass
class Chunk:
    """Consecutive good records of one partition that can share a batch file.

    ``payloads[i]`` is the record at ``offsets[i]`` in Kusto's ``format``; records with a
    different framing (another Avro schema, say) start a new chunk, so a batch never mixes
    framings.
    """

    format: str
    framing: Framing
    offsets: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    @property
    def raw_bytes(self) -> int:
        return sum(map(len, self.payloads))


@dataclass(frozen=True)
class DeadLetter:
    """A record the sink could not deliver, and why; it goes to a dead-letter topic."""

    record: KafkaRecord
    error: Exception
