"""Reconciliation: does Kusto hold exactly the rows of every batch the sink delivered?

Each batch materialization in the Dagster instance names a batch id, its offsets and its
rows (the records of its range that went into the file: dead letters and skipped tombstones
are not among them). Kusto's extents tagged ``ingest-by:<batch id>`` must hold exactly that
many rows: fewer means an extent was lost or dropped by hand, more means a duplicate.

A batch that a later batch of the same table overlaps was replaced (a backfill with
``replace``, which drops whole batches), and is not expected any more. Streamed batches
carry no tags (Kusto puts none on streamed extents) and cannot be checked this way; they
are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from azure.kusto.data import KustoClient

from pipelines.extents import batch_extents

_PAGE = 1000
# Mismatches listed in the check's metadata; the count covers them all.
SHOWN = 20


@dataclass(frozen=True)
class DeliveredBatch:
    batch_id: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    rows: int
    streamed: bool


@dataclass
class Reconciliation:
    table: str
    checked: int = 0
    unchecked_streamed: int = 0
    rows_expected: int = 0
    rows_found: int = 0
    # (batch id, rows expected, rows found)
    mismatches: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        if self.passed:
            return f"{self.table}: {self.checked} batch(es), {self.rows_found} rows, all match"
        shown = ", ".join(f"{b} expected {e} found {f}" for b, e, f in self.mismatches[:3])
        return (
            f"{self.table}: {len(self.mismatches)} of {self.checked} batch(es) do not match "
            f"their rows in Kusto: {shown}"
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "batches_checked": self.checked,
            "batches_mismatched": len(self.mismatches),
            "streamed_batches_unchecked": self.unchecked_streamed,
            "rows_expected": self.rows_expected,
            "rows_found": self.rows_found,
            "mismatches": dg.MetadataValue.md(
                "\n".join(
                    f"- `{b}`: expected {e}, found {f}" for b, e, f in self.mismatches[:SHOWN]
                )
                or "none"
            ),
        }


def delivered_batches(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey
) -> Iterator[DeliveredBatch]:
    """Every batch materialized on a table's asset, oldest first."""
    cursor = None
    while True:
        page = instance.fetch_materializations(
            asset_key, limit=_PAGE, cursor=cursor, ascending=True
        )
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is None or "batch_id" not in materialization.metadata:
                continue
            meta = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            yield DeliveredBatch(
                batch_id=str(meta["batch_id"]),
                topic=str(meta["topic"]),
                partition=int(str(meta["partition"])),
                first_offset=int(str(meta["first_offset"])),
                last_offset=int(str(meta["last_offset"])),
                rows=int(str(meta["rows"])),
                streamed=meta.get("ingestion_mode") == "streaming",
            )
        if not page.has_more:
            return
        cursor = page.cursor


def current_batches(batches: Iterator[DeliveredBatch]) -> list[DeliveredBatch]:
    """The batches still expected in Kusto: the latest of each id, minus replaced ones.

    Live delivery never cuts a batch over offsets Kusto holds, so two batches of one
    partition overlap only when a ``replace`` dropped the older one.
    """
    kept: dict[tuple[str, int], list[DeliveredBatch]] = {}
    for batch in batches:
        same = kept.setdefault((batch.topic, batch.partition), [])
        same[:] = [
            b
            for b in same
            if b.last_offset < batch.first_offset or b.first_offset > batch.last_offset
        ]
        same.append(batch)
    return [b for same in kept.values() for b in same]


def reconcile(
    query: KustoClient, database: str, table: str, batches: list[DeliveredBatch]
) -> Reconciliation:
    """Compare each batch's rows with the rows of its tagged extents in ``database.table``."""
    result = Reconciliation(f"{database}.{table}")
    found: dict[str, int] = {}
    for topic in sorted({b.topic for b in batches}):
        for extent in batch_extents(query, database, table, topic):
            found[extent.batch_id] = found.get(extent.batch_id, 0) + extent.rows
    for batch in sorted(batches, key=lambda b: (b.topic, b.partition, b.first_offset)):
        if batch.streamed:
            result.unchecked_streamed += 1
            continue
        rows = found.get(batch.batch_id, 0)
        result.checked += 1
        result.rows_expected += batch.rows
        result.rows_found += rows
        if rows != batch.rows:
            result.mismatches.append((batch.batch_id, batch.rows, rows))
    return result
