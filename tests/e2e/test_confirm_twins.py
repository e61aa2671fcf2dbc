"""Confirmation when two submissions of one batch race: the second is skipped by
ingestIfNotExists, which Kusto reports as a permanent failure. That is no refusal."""

from __future__ import annotations

import gzip
import time

from e2e_helpers import create_event_table, event, events_mapping

from pipelines.batch import BatchFile, batch_id
from pipelines.config import load_settings
from pipelines.runtime import SinkRuntime

SKIPPED = "Skipped_IngestByTagAlreadyExists"


def skipped_sources(kusto, db: str) -> set[str]:
    rows = kusto.execute_mgmt(db, ".show ingestion failures").primary_results[0]
    return {str(r["IngestionSourcePath"]) for r in rows if r["ErrorCode"] == SKIPPED}


def test_a_twin_skipped_after_the_extent_listing_counts_as_confirmed(
    kusto, kusto_db, make_topic, write_settings, tmp_path, monkeypatch
):
    topic = make_topic(partitions=1)
    create_event_table(kusto, kusto_db, "Events")
    path = write_settings(
        topic, [events_mapping(topic, kusto_db)], value_converter={"kind": "json"}
    )
    body = b"\n".join(event(i) for i in range(10))
    file = tmp_path / "batch.json.gz"
    file.write_bytes(gzip.compress(body))
    batch = BatchFile(
        file, batch_id(topic, 0, 0, 9), topic, 0, 0, 9, 10, len(body), file.stat().st_size,
        "multijson", True,
    )  # fmt: skip

    with SinkRuntime(load_settings(path)) as runtime:
        ingestor = runtime.ingestor
        target = runtime.routes(topic)[0].target
        first = ingestor.submit(batch, target)
        twin = ingestor.submit(batch, target)
        deadline = time.monotonic() + 60
        while not any(str(twin.source_id) in p for p in skipped_sources(kusto, kusto_db)):
            assert time.monotonic() < deadline, "Kusto never skipped the twin"
            time.sleep(0.2)

        # The listing that saw nothing ran just before the first submission landed.
        real_extents = ingestor._extents
        calls: list[tuple] = []

        def stale_first_listing(*args):
            calls.append(args)
            return [] if len(calls) == 1 else real_extents(*args)

        monkeypatch.setattr(ingestor, "_extents", stale_first_listing)
        failed = ingestor.check([twin])

    assert len(calls) == 2, "the batch should have been looked for again"
    assert failed == []
    assert twin.confirmed
    assert first.source_id != twin.source_id
    rows = kusto.execute_query(kusto_db, "Events | count").primary_results[0][0][0]
    assert rows == 10
