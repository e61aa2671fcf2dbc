"""Backfill planning without servers: gaps between held batches, chunks, positions, config."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from pipelines.backfill import (
    BackfillRequest,
    missing_spans,
    parse_position,
    routes_for,
    split,
    widen,
)
from pipelines.backfill_job import (
    BACKFILL_TAG,
    BackfillConfig,
    backfill_run_config,
    backfill_run_tags,
    build_backfill_job,
)
from pipelines.config import SinkSettings
from pipelines.errors import ConfigError
from pipelines.jobs import PARTITIONS_TAG, SINK_TAG
from pipelines.plan import OffsetRange
from pipelines.runtime import SinkRuntime


def test_gaps_leave_out_every_held_span_not_only_a_prefix():
    held = [(0, 99), (200, 299), (350, 360)]
    assert missing_spans(held, 50, 400) == [(100, 200), (300, 350), (361, 400)]
    assert missing_spans(held, 0, 100) == []
    assert missing_spans([], 10, 20) == [(10, 20)]
    # Batches cut elsewhere, overlapping each other and the range's bounds.
    assert missing_spans([(0, 149), (100, 249)], 120, 260) == [(250, 260)]


def test_replace_widens_a_range_to_whole_batches_even_ones_cut_differently():
    held = [(0, 99), (100, 199), (300, 399)]
    assert widen(held, 150, 160) == (100, 200)
    assert widen(held, 100, 200) == (100, 200)
    assert widen(held, 250, 301) == (250, 400)
    assert widen(held, 200, 300) == (200, 300)
    # A retired batch cut elsewhere overlaps two held ones: all three go whole.
    assert widen([*held, (90, 109)], 150, 160) == (0, 200)


def test_chunks_are_cut_from_each_range_start():
    ranges = [OffsetRange("t", 0, 5, 30), OffsetRange("t", 1, 0, 10)]
    assert [(r.partition, r.start, r.end) for r in split(ranges, 10)] == [
        (0, 5, 15),
        (0, 15, 25),
        (0, 25, 30),
        (1, 0, 10),
    ]


def test_positions_are_offsets_or_utc_times():
    assert parse_position("1000") == 1000
    assert parse_position("2026-11-28T10:00Z") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert parse_position("2026-11-28T10:00:00") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither an offset nor an ISO 8601 time"):
        parse_position("yesterday")


def test_launchpad_config_becomes_a_request():
    config = BackfillConfig(
        topic="orders", partitions=[2], from_time="2026-11-28T10:00Z", to_offset=500, table="A"
    )
    assert config.request() == BackfillRequest(
        "orders", datetime(2026, 11, 28, 10, tzinfo=UTC), 500, (2,), "A", False
    )
    with pytest.raises(dg.Failure, match="give from_offset or from_time, not both"):
        BackfillConfig(topic="orders", from_offset=1, from_time="2026-11-28T10:00Z").request()
    with pytest.raises(dg.Failure, match="give from_offset or from_time"):
        BackfillConfig(topic="orders").request()


def test_backfill_runs_say_what_they_do_and_leave_live_sensors_alone():
    rng = OffsetRange("orders", 2, 1000, 2000)
    tags = backfill_run_tags("shop", rng, "Audit")
    assert tags["kusto-sink/range"] == "backfill orders[2] 1000-2000 into Audit"
    assert tags[PARTITIONS_TAG] == "orders[2]"
    assert SINK_TAG not in tags  # or the live sensors would wait for the backfill
    assert tags[BACKFILL_TAG] == "shop"  # bounded by its own limit in dagster.yaml
    config = backfill_run_config(rng, "Audit")["ops"]["plan_backfill"]["config"]
    assert (config["from_offset"], config["to_offset"], config["replace"]) == (1000, 2000, False)


def _settings(mappings: list[dict[str, object]]) -> SinkSettings:
    return SinkSettings.model_validate(
        {
            "name": "shop",
            "kafka": {"bootstrap_servers": "127.0.0.1:1"},
            "kusto": {"ingestion_url": "http://127.0.0.1:1"},
            "topics": ["orders"],
            "mappings": mappings,
            "value_converter": {"kind": "json"},
        }
    )


def test_routes_point_at_another_table_keeping_format_and_mapping():
    mapping = {
        "topic": "orders",
        "db": "sales",
        "table": "Orders",
        "format": "json",
        "mapping": "m",
    }
    runtime = SinkRuntime(_settings([mapping]))
    (live,) = routes_for(runtime, "orders", None)
    assert (live.target.database, live.target.table) == ("sales", "Orders")
    (other,) = routes_for(runtime, "orders", "audit.OrdersAudit")
    assert (other.target.database, other.target.table, other.target.mapping) == (
        "audit",
        "OrdersAudit",
        "m",
    )
    (same_db,) = routes_for(runtime, "orders", "OrdersAudit")
    assert same_db.target.database == "sales"


def test_launchpad_backfill_runs_carry_the_backfill_tag():
    mapping = {"topic": "orders", "db": "sales", "table": "Orders", "format": "json"}
    job = build_backfill_job(_settings([mapping]))
    assert job.tags[BACKFILL_TAG] == "shop" and SINK_TAG not in job.tags


def test_another_table_needs_a_topic_with_one_mapping():
    mappings = [
        {"topic": "orders", "db": "sales", "table": t, "format": "json"} for t in ("A", "B")
    ]
    with pytest.raises(
        ConfigError, match=r"topic orders feeds several tables \(sales.A, sales.B\)"
    ):
        routes_for(SinkRuntime(_settings(mappings)), "orders", "C")
