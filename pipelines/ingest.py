"""Ingest batch files into Kusto and confirm them.

Exactly-once rests on two Kusto features: every queued batch carries the extent tag
``ingest-by:<batch id>`` and ``ingestIfNotExists=[<batch id>]``, so Kusto itself drops a
replay of a batch it already holds; and a batch counts as delivered only once its tag is
visible in ``.show table T extents``. That check is a query, so concurrent steps never
compete for the shared status queues.

Streaming ingestion (``streaming: true``) is confirmed by the call itself; Kusto puts no
tags on streamed extents, so a crash in the moment between a streamed batch and the offset
commit replays that batch (at-least-once). Large payloads fall back to queued ingestion,
which is tagged and exactly-once again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.kusto.data import ClientRequestProperties, KustoClient
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import (
    FileDescriptor,
    IngestionProperties,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
    ReportLevel,
)
from azure.kusto.ingest.base_ingest_client import IngestionStatus

from pipelines.batch import BatchFile
from pipelines.errors import IngestionFailed
from pipelines.extents import BatchExtent, batch_extents
from pipelines.kusto_errors import kusto_errors

log = logging.getLogger(__name__)

# Each submission gets a source id of its own: the SDK names the blob after it and never
# overwrites a blob, so a batch submitted again (after a transient failure, or by a replay)
# needs a new one. A batch's identity lives in its tags; the source id only tells this
# submission's status apart from an earlier one's.
_NOT_FOUND = "BadRequest_EntityNotFound"
# Failures are asked for from the oldest pending submission on, less this much: Kusto's
# clock and ours may differ. A failure matches its batch by source id, never by time.
_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class IngestTarget:
    """Where a mapping's batches go."""

    database: str
    table: str
    format: str
    mapping: str | None = None
    streaming: bool = False


@dataclass
class Receipt:
    """One batch handed to Kusto, and what became of it."""

    batch: BatchFile
    target: IngestTarget
    source_id: uuid.UUID
    submitted_at: datetime
    mode: str
    enqueue_seconds: float
    confirmed: bool = False
    confirm_seconds: float | None = None

    @property
    def key(self) -> tuple[IngestTarget, str, int]:
        return self.target, self.batch.topic, self.batch.partition


def resume_offset(spans: Iterable[tuple[int, int]], start: int) -> int:
    """The first offset at or after ``start`` not covered by contiguous delivered spans.

    ``spans`` are the inclusive offset ranges of batches Kusto already holds. Replaying a
    range resumes here, so batches cut differently after a restart (a new flush size,
    say) never re-deliver what is already in Kusto.
    """
    position = start
    for first, last in sorted(spans):
        if first > position:
            break
        position = max(position, last + 1)
    return position


class KustoIngestor:
    """Submits batch files to Kusto and waits until Kusto holds them."""

    def __init__(
        self,
        queued: QueuedIngestClient,
        query: KustoClient,
        streaming: ManagedStreamingIngestClient | None = None,
        *,
        exactly_once: bool = True,
        confirm_timeout_s: float = 300.0,
        poll_interval_s: float = 1.0,
        request_timeout_s: float = 30.0,
    ) -> None:
        self._queued = queued
        self._streaming = streaming
        self._query = query
        self._exactly_once = exactly_once
        self.confirm_timeout_s = confirm_timeout_s
        self.poll_interval_s = poll_interval_s
        # Kusto's own default for management commands is an hour; the SDK adds 30 s to this.
        self.request_timeout_s = request_timeout_s

    @property
    def query_client(self) -> KustoClient:
        return self._query

    def delivered_spans(
        self, target: IngestTarget, topic: str, partition: int
    ) -> list[tuple[int, int]]:
        """Offset spans of this partition's batches that the target table already holds."""
        return [(e.first_offset, e.last_offset) for e in self._extents(target, topic, partition)]

    def submit(self, batch: BatchFile, target: IngestTarget) -> Receipt:
        """Hand one batch file to Kusto (queued, or streaming when the mapping asks)."""
        props = self._properties(batch, target)
        descriptor = FileDescriptor(str(batch.path), batch.raw_bytes, uuid.uuid4())
        client = self._streaming if target.streaming and self._streaming else self._queued
        what = f"ingesting batch {batch.batch_id} into {target.database}.{target.table}"
        began = time.monotonic()
        submitted_at = datetime.now(UTC)
        with kusto_errors(what):
            result = client.ingest_from_file(descriptor, props)
        streamed = result.status == IngestionStatus.SUCCESS
        receipt = Receipt(
            batch=batch,
            target=target,
            source_id=descriptor.source_id,
            submitted_at=submitted_at,
            mode="streaming" if streamed else "queued",
            enqueue_seconds=time.monotonic() - began,
        )
        if streamed or not self._exactly_once:
            # Streaming answers once the rows are in; at-least-once trusts the queue.
            receipt.confirmed = True
            receipt.confirm_seconds = receipt.enqueue_seconds
        log.info("%s: %s in %.2fs", what, receipt.mode, receipt.enqueue_seconds)
        return receipt

    def check(self, receipts: Sequence[Receipt]) -> list[tuple[Receipt, IngestionFailed]]:
        """Mark the receipts whose batch Kusto holds as confirmed; return the ones Kusto
        reported failed since they were submitted, each with its failure.

        One extent listing per table and partition answers for all its pending batches;
        failures are asked for only while some batch is unconfirmed, and only those since
        the oldest pending submission.
        """
        groups: dict[tuple[IngestTarget, str, int], list[Receipt]] = {}
        for receipt in receipts:
            if not receipt.confirmed:
                groups.setdefault(receipt.key, []).append(receipt)
        failed: list[tuple[Receipt, IngestionFailed]] = []
        for (target, topic, partition), group in groups.items():
            self._confirm_held(group, target, topic, partition)
            unconfirmed = [r for r in group if not r.confirmed]
            group_failed = self._failures(target, unconfirmed) if unconfirmed else []
            if group_failed:
                # A twin submission of a batch (a replay, a re-sent upload) may have landed
                # between the two listings: Kusto then reports this one skipped
                # (ingestIfNotExists), which is no refusal. Look once more before believing it.
                self._confirm_held(group, target, topic, partition)
                group_failed = [(r, f) for r, f in group_failed if not r.confirmed]
            failed += group_failed
        return failed

    def _confirm_held(
        self,
        group: list[Receipt],
        target: IngestTarget,
        topic: str,
        partition: int,
    ) -> None:
        held = {e.batch_id for e in self._extents(target, topic, partition)}
        now = datetime.now(UTC)
        for receipt in group:
            if not receipt.confirmed and receipt.batch.batch_id in held:
                receipt.confirmed = True
                receipt.confirm_seconds = (now - receipt.submitted_at).total_seconds()

    def _failures(
        self, target: IngestTarget, receipts: list[Receipt]
    ) -> list[tuple[Receipt, IngestionFailed]]:
        by_source = {str(r.source_id): r for r in receipts}
        since = min(r.submitted_at for r in receipts) - _CLOCK_SKEW
        # Not filtered by table: a failure in an update policy may name the policy's target
        # table. Failures are matched to batches by source id.
        command = (
            f".show ingestion failures | where FailedOn >= datetime({since:%Y-%m-%dT%H:%M:%S.%fZ})"
        )
        found: dict[str, tuple[Receipt, IngestionFailed]] = {}
        with kusto_errors(f"reading ingestion failures of {target.database}.{target.table}"):
            response = self._query.execute_mgmt(target.database, command, self._request())
        for row in response.primary_results[0]:
            path = str(row["IngestionSourcePath"] or "")
            sid = next((sid for sid in by_source if sid in path), None)
            if sid is None:
                continue
            receipt = by_source[sid]
            code = str(row["ErrorCode"] or "")
            found[sid] = (
                receipt,
                IngestionFailed(
                    f"Kusto failed batch {receipt.batch.batch_id} into "
                    f"{target.database}.{target.table}: {code}: {row['Details']}",
                    permanent=str(row["FailureKind"]).lower() == "permanent",
                    table=f"{target.database}.{target.table}",
                    batch_id=receipt.batch.batch_id,
                    error_code=code,
                ),
            )
        return list(found.values())

    def _extents(self, target: IngestTarget, topic: str, partition: int) -> list[BatchExtent]:
        try:
            return batch_extents(
                self._query,
                target.database,
                target.table,
                topic,
                partition,
                properties=self._request(),
            )
        except IngestionFailed as error:
            if error.error_code == _NOT_FOUND:
                # A dropped table holds no batch; its ingestions fail and say why.
                return []
            raise

    def _request(self) -> ClientRequestProperties:
        properties = ClientRequestProperties()
        properties.set_option(
            ClientRequestProperties.request_timeout_option_name,
            timedelta(seconds=self.request_timeout_s),
        )
        return properties

    def _properties(self, batch: BatchFile, target: IngestTarget) -> IngestionProperties:
        tag = batch.batch_id
        tagged = self._exactly_once
        return IngestionProperties(
            database=target.database,
            table=target.table,
            data_format=DataFormat[target.format.upper()],
            ingestion_mapping_reference=target.mapping,
            ingest_by_tags=[tag] if tagged else None,
            ingest_if_not_exists=[tag] if tagged else None,
            drop_by_tags=[tag],
            report_level=ReportLevel.FailuresOnly,
        )
