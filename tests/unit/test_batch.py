import gzip
import io
import json
from pathlib import Path

import fastavro
import pytest

from pipelines.batch import BatchFile, BatchWriter, batch_id
from pipelines.records import AvroFraming, Chunk, LineFraming, WholeFileFraming

LINES = LineFraming()
USER_V1 = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "long"}]}
USER_V2 = {
    "type": "record",
    "name": "User",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
}


def json_chunk(offsets: list[int], size: int = 10) -> Chunk:
    payloads = [json.dumps({"o": o}).encode().ljust(size) for o in offsets]
    return Chunk("json", LINES, list(offsets), payloads)


def avro_chunk(schema: dict, offsets: list[int]) -> Chunk:
    parsed = fastavro.parse_schema(schema)
    bodies = []
    for o in offsets:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, {"id": o, "name": f"user {o}"})
        bodies.append(out.getvalue())
    return Chunk("avro", AvroFraming(json.dumps(schema)), list(offsets), bodies)


def writer(tmp_path: Path, *, range_start: int = 0, flush: int = 1000, **kw: object) -> BatchWriter:
    return BatchWriter(
        tmp_path,
        topic="orders",
        partition=2,
        range_start=range_start,
        flush_size_bytes=flush,
        **kw,  # type: ignore[arg-type]
    )


def spans(batches: list[BatchFile]) -> list[tuple[int, int, int]]:
    return [(b.first_offset, b.last_offset, b.records) for b in batches]


def lines(batch: BatchFile) -> list[bytes]:
    return gzip.decompress(batch.path.read_bytes()).splitlines()


def test_batch_id_names_topic_partition_offsets_and_table() -> None:
    assert batch_id("orders", 2, 1000, 1999) == "orders/2/1000-1999"
    assert batch_id("orders", 2, 1000, 1999, "sales.Orders") == "orders/2/1000-1999@sales.Orders"


def test_line_batch_is_a_gzipped_file_of_one_record_a_line(tmp_path: Path) -> None:
    w = writer(tmp_path, range_start=100)
    chunk = json_chunk([100, 101, 102])
    assert w.add(chunk) == []
    (batch,) = w.finish(103)
    assert batch.batch_id == "orders/2/100-102"
    assert batch.path.name == "orders-2-100-102.json.gz"
    assert lines(batch) == [p.rstrip() for p in chunk.payloads]
    assert (batch.records, batch.raw_bytes, batch.format) == (3, 30, "json")
    assert batch.compressed
    assert batch.file_bytes == batch.path.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [batch.path.name]


def test_batches_cut_at_flush_size_and_stay_contiguous(tmp_path: Path) -> None:
    w = writer(tmp_path, range_start=0, flush=25)  # two 10-byte records fit, three do not
    completed = w.add(json_chunk([0, 1, 2, 3, 4]))
    assert spans(completed) == [(0, 1, 2), (2, 3, 2)]
    completed += w.finish(8)
    # The last batch covers the range up to its end, offsets without records included.
    assert spans(completed) == [(0, 1, 2), (2, 3, 2), (4, 7, 1)]
    assert all(b.raw_bytes <= 25 for b in completed)


def test_offsets_without_good_records_belong_to_the_batch_before_the_next_record(
    tmp_path: Path,
) -> None:
    w = writer(tmp_path, range_start=10, flush=20)
    # 10 and 11 are dead letters; 14-15 a compacted gap.
    batches = w.add(json_chunk([12, 13, 16, 17, 18]))
    batches += w.finish(25)
    assert spans(batches) == [(10, 15, 2), (16, 17, 2), (18, 24, 1)]
    assert lines(batches[1]) == [b'{"o": 16} ', b'{"o": 17} ']


def test_a_record_larger_than_flush_size_gets_a_batch_of_its_own(tmp_path: Path) -> None:
    w = writer(tmp_path, flush=25)
    batches = w.add(json_chunk([0], size=10))
    batches += w.add(json_chunk([1], size=100))
    batches += w.add(json_chunk([2], size=10))
    batches += w.finish(3)
    assert spans(batches) == [(0, 0, 1), (1, 1, 1), (2, 2, 1)]
    assert batches[1].raw_bytes == 100


def test_a_range_without_good_records_gives_nothing_to_ingest(tmp_path: Path) -> None:
    w = writer(tmp_path, range_start=5)
    assert w.add(Chunk("json", LINES)) == []
    assert w.finish(50) == []
    assert list(tmp_path.iterdir()) == []


def test_replays_cut_the_same_batches_and_write_the_same_bytes(tmp_path: Path) -> None:
    offsets = [o for o in range(400) if o % 7]  # gaps: dead letters
    records = json_chunk(offsets, size=30)

    def replay(directory: Path, chunk_size: int) -> list[tuple[str, bytes]]:
        directory.mkdir()
        w = writer(directory, flush=1000)
        batches = []
        for i in range(0, len(offsets), chunk_size):
            sub = Chunk(
                "json", LINES, offsets[i : i + chunk_size], records.payloads[i : i + chunk_size]
            )
            batches += w.add(sub)
        batches += w.finish(400)
        return [(b.batch_id, b.path.read_bytes()) for b in batches]

    first, second = replay(tmp_path / "a", 1), replay(tmp_path / "b", 97)
    assert [bid for bid, _ in first] == [bid for bid, _ in second]
    assert first == second
    assert len(first) > 5


def test_avro_batch_is_a_container_file_fastavro_reads(tmp_path: Path) -> None:
    w = writer(tmp_path, range_start=0, flush=10_000)
    w.add(avro_chunk(USER_V2, [0, 1, 2]))
    (batch,) = w.finish(3)
    assert batch.path.name == "orders-2-0-2.avro"
    assert not batch.compressed
    with batch.path.open("rb") as f:
        reader = fastavro.reader(f)
        assert reader.codec == "deflate"
        assert [r["name"] for r in reader] == ["user 0", "user 1", "user 2"]


def test_avro_blocks_and_sync_markers_are_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.batch.AVRO_BLOCK_BYTES", 64)  # several blocks per file
    chunk = avro_chunk(USER_V2, list(range(50)))

    def replay(directory: Path, chunk_size: int) -> list[BatchFile]:
        directory.mkdir()
        w = writer(directory, flush=200)
        batches = []
        for i in range(0, 50, chunk_size):
            sub = Chunk(
                "avro",
                chunk.framing,
                chunk.offsets[i : i + chunk_size],
                chunk.payloads[i : i + chunk_size],
            )
            batches += w.add(sub)
        return batches + w.finish(50)

    first, second = replay(tmp_path / "a", 50), replay(tmp_path / "b", 3)
    assert [b.path.read_bytes() for b in first] == [b.path.read_bytes() for b in second]
    assert len(first) > 1
    # Each batch has its own sync marker, derived from its id.
    assert len({b.path.read_bytes()[-16:] for b in first}) == len(first)
    read_back = []
    for batch in first:
        with batch.path.open("rb") as f:
            read_back += [r["id"] for r in fastavro.reader(f)]
    assert read_back == list(range(50))


def test_a_new_avro_schema_or_format_starts_a_new_batch(tmp_path: Path) -> None:
    w = writer(tmp_path)
    batches = w.add(avro_chunk(USER_V1, [0, 1]))
    batches += w.add(avro_chunk(USER_V2, [3, 4]))
    batches += w.add(json_chunk([5]))
    batches += w.finish(6)
    assert spans(batches) == [(0, 2, 2), (3, 4, 2), (5, 5, 1)]
    with batches[0].path.open("rb") as f:
        assert fastavro.reader(f).writer_schema["fields"] == USER_V1["fields"]
    assert batches[2].path.name.endswith(".json.gz")


def test_whole_file_records_are_one_file_each_written_unchanged(tmp_path: Path) -> None:
    files = [b"PAR1 first PAR1", b"PAR1 second PAR1"]
    w = writer(tmp_path, range_start=0, flush=10**9)
    batches = w.add(json_chunk([0]))
    batches += w.add(Chunk("parquet", WholeFileFraming(), [2, 3], files))
    batches += w.finish(5)
    assert spans(batches) == [(0, 1, 1), (2, 2, 1), (3, 4, 1)]
    assert [b.path.read_bytes() for b in batches[1:]] == files
    assert [b.path.name for b in batches[1:]] == ["orders-2-2-2.parquet", "orders-2-3-4.parquet"]
    assert not batches[1].compressed


def test_table_is_part_of_batch_id_and_file_name(tmp_path: Path) -> None:
    w = writer(tmp_path, table="sales.Orders")
    w.add(json_chunk([0]))
    (batch,) = w.finish(1)
    assert batch.batch_id == "orders/2/0-0@sales.Orders"
    assert batch.path.name == "orders-2-0-0@sales.Orders.json.gz"


def test_records_out_of_offset_order_are_refused(tmp_path: Path) -> None:
    w = writer(tmp_path, range_start=10)
    with pytest.raises(ValueError, match="topic=orders partition=2: record at offset 9"):
        w.add(json_chunk([9]))
    w.add(json_chunk([10, 11]))
    with pytest.raises(ValueError, match="record at offset 11 comes after offset 11"):
        w.add(json_chunk([11]))
    with pytest.raises(ValueError, match="cannot end at 10"):
        w.finish(11)


def test_a_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="decoder broke"), writer(tmp_path) as w:
        w.add(json_chunk([0, 1]))
        raise RuntimeError("decoder broke")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_surfaces_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self: object, payloads: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipelines.batch._GzipLines.write", disk_full)
    with pytest.raises(OSError, match="No space left"), writer(tmp_path) as w:
        w.add(json_chunk([0, 1]))
        w.finish(2)
    assert list(tmp_path.iterdir()) == []


def test_writers_of_several_tables_can_share_a_directory(tmp_path: Path) -> None:
    first, second = writer(tmp_path, table="db.A"), writer(tmp_path, table="db.B")
    first.add(json_chunk([0, 1]))
    second.add(json_chunk([0]))
    (a,) = first.finish(2)
    (b,) = second.finish(2)
    assert (a.batch_id, b.batch_id) == ("orders/2/0-1@db.A", "orders/2/0-1@db.B")
    assert (a.records, b.records) == (2, 1)
    assert len(set(tmp_path.iterdir())) == 2
