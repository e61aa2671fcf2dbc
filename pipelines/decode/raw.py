"""Whole files carried as message bytes (Parquet, ORC, Avro container files), sent as is.

Only the magic bytes are checked: the file's own structure is Kusto's to read, and a
corrupt file fails alone, since each record becomes its own blob.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipelines.decode.base import ChunkAssembler, offsets_of, values_of
from pipelines.records import Chunk, DeadLetter, KafkaRecord, WholeFileFraming

WHOLE_FILE = WholeFileFraming()


def _parquet_problem(value: bytes) -> str | None:
    # "PAR1" opens and closes a Parquet file, around at least a 4-byte footer length
    if len(value) < 12 or not value.startswith(b"PAR1") or not value.endswith(b"PAR1"):
        return "not a Parquet file: it must start and end with the magic bytes PAR1"
    return None


def _orc_problem(value: bytes) -> str | None:
    if not value.startswith(b"ORC"):
        return "not an ORC file: it must start with the magic bytes ORC"
    return None


def _avro_file_problem(value: bytes) -> str | None:
    if not value.startswith(b"Obj\x01"):
        return "not an Avro object container file: it must start with Obj\\x01"
    return None


FILE_CHECKS: dict[str, Callable[[bytes], str | None]] = {
    "parquet": _parquet_problem,
    "orc": _orc_problem,
    "avro": _avro_file_problem,
    "apacheavro": _avro_file_problem,
}


class WholeFileDecoder:
    """Raw-bytes records, each a whole file in ``format``."""

    def __init__(self, format: str) -> None:
        if format not in FILE_CHECKS:
            raise ValueError(f"not a whole-file format: {format!r}")
        self._format, self._problem = format, FILE_CHECKS[format]

    def decode(self, records: Sequence[KafkaRecord]) -> tuple[list[Chunk], list[DeadLetter]]:
        out = ChunkAssembler(self._format)
        offsets = offsets_of(records)
        for i, value in enumerate(values_of(records)):
            if value is None:
                out.tombstone(records[i])
                continue
            problem = self._problem(value)
            if problem is None:
                out.add(WHOLE_FILE, offsets[i], value)
            else:
                out.reject(records[i], problem)
        return out.result()
