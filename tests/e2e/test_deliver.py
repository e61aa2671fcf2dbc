"""The sink's data path against the real stack: Kafka → batches → Kusto → committed offsets."""

from __future__ import annotations

import pytest
from azure.kusto.data import KustoClient
from e2e_helpers import create_event_table, event, events_mapping, id_checksum

from pipelines.config import ConfigError, load_settings
from pipelines.deliver import DeliveryReport
from pipelines.errors import DecodeError
from pipelines.extents import batch_extents, drop_extents
from pipelines.plan import OffsetRange
from pipelines.runtime import SinkRuntime

pytestmark = pytest.mark.stack


def kusto_ids(kusto: KustoClient, db: str, table: str) -> list[int]:
    rows = kusto.execute_query(db, f"{table} | project id").primary_results[0]
    return [row["id"] for row in rows]


def test_json_topic_lands_exactly_once_and_offsets_are_committed(kusto, kusto_db, json_events):
    topic, path = json_events(3, 3000, flush_size_bytes=40_000)
    with SinkRuntime(load_settings(path)) as runtime:
        ranges = runtime.plan()
        assert {(r.partition, r.start, r.end) for r in ranges} == {
            (0, 0, 1000),
            (1, 0, 1000),
            (2, 0, 1000),
        }
        reports = [runtime.deliver(r) for r in ranges]
        assert all(len(r.receipts) > 1 for r in reports), "flush size should cut several batches"

        ids = kusto_ids(kusto, kusto_db, "Events")
        assert len(ids) == 3000
        assert id_checksum(ids) == id_checksum(list(range(3000)))
        states = runtime.partition_states()
        assert all(s.committed == s.high == 1000 for s in states.values())
        assert runtime.plan() == [], "a second drain moves nothing"

        # Replaying a delivered range by hand (its commit check aside) adds no rows.
        replay = runtime.ingestor
        again = [runtime.routes(topic)[0]]
        spans = replay.delivered_spans(again[0].target, topic, 0)
        assert min(s[0] for s in spans) == 0 and max(s[1] for s in spans) == 999
    assert len(kusto_ids(kusto, kusto_db, "Events")) == 3000


def test_replaying_a_range_kusto_holds_adds_nothing(
    kusto, kusto_db, make_topic, produce, write_settings
):
    """A run that crashed after ingesting but before committing is replayed safely."""
    topic = make_topic(partitions=1)
    create_event_table(kusto, kusto_db, "Events")
    produce(topic, [event(i) for i in range(500)], partitions=1)
    mapping = events_mapping(topic, kusto_db)
    path = write_settings(topic, [mapping], value_converter={"kind": "json"})
    settings = load_settings(path)
    with SinkRuntime(settings) as runtime:
        (rng,) = runtime.plan()
        route = runtime.routes(topic)[0]
        # Ingest the first 300 records as a crashed run would have, without committing.
        first = OffsetRange(topic, 0, 0, 300)
        runtime.deliver(first)
        # The committed offset is now 300; pretend the crash came before the commit by
        # replaying the whole range from 0 under a second sink name (fresh group).
    replay_path = write_settings(f"{topic}-replay", [mapping], value_converter={"kind": "json"})
    with SinkRuntime(load_settings(replay_path)) as runtime:
        (rng,) = runtime.plan()
        assert (rng.start, rng.end) == (0, 500)
        report = runtime.deliver(rng)
        assert report.resumed_at == 300, "Kusto's tags say 0-299 are delivered"
        assert route.target.table == "Events"
    ids = kusto_ids(kusto, kusto_db, "Events")
    assert sorted(ids) == list(range(500))


def test_delivery_fails_fast_before_reading_when_the_table_is_missing(
    kusto_db, make_topic, produce, write_settings
):
    """The preflight runs before the first range is read: nothing lands, nothing commits."""
    topic = make_topic(partitions=1)
    produce(topic, [event(i) for i in range(10)], partitions=1)
    mapping = {"topic": topic, "db": kusto_db, "table": "Missing", "format": "multijson"}
    path = write_settings(topic, [mapping], value_converter={"kind": "json"})
    with SinkRuntime(load_settings(path)) as runtime:
        (rng,) = runtime.plan()
        with pytest.raises(ConfigError) as refused:
            runtime.deliver(rng)
        assert "mappings[0].table" in str(refused.value)
        assert "Missing" in str(refused.value)
        assert all(s.committed is None for s in runtime.partition_states().values())


def test_latest_starts_where_the_topic_ended_when_the_sink_first_saw_it(
    stack, kusto, kusto_db, make_topic, produce, write_settings
):
    topic = make_topic(partitions=1)
    create_event_table(kusto, kusto_db, "Events")
    produce(topic, [event(i) for i in range(10)], partitions=1)  # before the sink existed
    mapping = events_mapping(topic, kusto_db)
    kafka = {"bootstrap_servers": stack.bootstrap_servers, "auto_offset_reset": "latest"}
    path = write_settings(topic, [mapping], value_converter={"kind": "json"}, kafka=kafka)
    with SinkRuntime(load_settings(path)) as runtime:
        assert runtime.plan() == [], "latest: nothing before the sink first looked"
        produce(topic, [event(i) for i in range(10, 15)], partitions=1)
        (rng,) = runtime.plan()
        assert (rng.start, rng.end) == (10, 15)
        runtime.deliver(rng)
    assert sorted(kusto_ids(kusto, kusto_db, "Events")) == list(range(10, 15))


def test_a_replay_cuts_an_unconfirmed_batch_between_held_ones_with_its_own_id(
    kusto, kusto_db, make_topic, produce, write_settings
):
    """An attempt's middle batch never confirmed (Kusto may still ingest it late): the
    replay must rebuild that batch with the same id, so ingestIfNotExists drops a twin."""
    topic = make_topic(partitions=1)
    create_event_table(kusto, kusto_db, "Events")
    produce(topic, [event(i) for i in range(300)], partitions=1)
    mapping = events_mapping(topic, kusto_db)
    first = write_settings(
        topic, [mapping], value_converter={"kind": "json"}, flush_size_bytes=9_000
    )
    with SinkRuntime(load_settings(first)) as runtime:
        (rng,) = runtime.plan()
        runtime.deliver(rng)
    extents = sorted(batch_extents(kusto, kusto_db, "Events", topic), key=lambda e: e.first_offset)
    assert len(extents) >= 3
    middle = extents[1]
    drop_extents(kusto, kusto_db, "Events", [middle])  # as if it had not landed yet

    replay = write_settings(f"{topic}-replay", [mapping], value_converter={"kind": "json"})
    with SinkRuntime(load_settings(replay)) as runtime:
        (rng,) = runtime.plan()
        runtime.deliver(rng)
    again = {e.batch_id for e in batch_extents(kusto, kusto_db, "Events", topic)}
    assert again == {e.batch_id for e in extents}, "the replay re-cut the middle batch"
    assert sorted(kusto_ids(kusto, kusto_db, "Events")) == list(range(300))


def test_deliver_all_reads_the_next_range_while_one_settles_and_commits_each(
    kusto, kusto_db, json_events
):
    topic, path = json_events(2, 1200, flush_size_bytes=40_000)
    with SinkRuntime(load_settings(path)) as runtime:
        # Two ranges of partition 0 in a row, then partition 1: the second range of a
        # partition commits only after the first one did.
        ranges = [
            OffsetRange(topic, 0, 0, 300),
            OffsetRange(topic, 0, 300, 600),
            OffsetRange(topic, 1, 0, 600),
        ]
        reports = runtime.deliver_all(ranges)

        assert [r.range for r in reports if isinstance(r, DeliveryReport)] == ranges
        states = runtime.partition_states()
        assert {tp.partition: s.committed for tp, s in states.items()} == {0: 600, 1: 600}
        # A retried step delivers its ranges again: committed ones are skipped, not refused.
        again = runtime.deliver_all(ranges)
        assert [(r.resumed_at, r.records_read) for r in again] == [(300, 0), (600, 0), (600, 0)]
    ids = kusto_ids(kusto, kusto_db, "Events")
    assert sorted(ids) == list(range(1200))


def test_deliver_all_goes_on_after_a_range_stopped_by_a_bad_record(
    kusto, kusto_db, json_events, produce
):
    # behavior.on.error=fail: the bad record stops its range, not the ranges after it.
    topic, path = json_events(2, 400)
    produce(topic, [b"{not json"], partitions=1)  # to partition 0, after its 200 events
    with SinkRuntime(load_settings(path)) as runtime:
        first, second = sorted(runtime.plan(), key=lambda r: r.partition)
        stopped, delivered = runtime.deliver_all([first, second])
        assert isinstance(stopped, DecodeError) and stopped.offset == 200
        assert isinstance(delivered, DeliveryReport) and delivered.rows == 200
        states = runtime.partition_states()
        assert {tp.partition: s.committed for tp, s in states.items()} == {0: None, 1: 200}
