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

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import AzureError
from azure.kusto.data import ClientRequestProperties, KustoClient
from azure.kusto.data.data_format import DataFormat
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoBlobError,
    KustoError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)
from azure.kusto.data.response import KustoResponseDataSet
from azure.kusto.ingest import (
    FileDescriptor,
    IngestionProperties,
    ManagedStreamingIngestClient,
    QueuedIngestClient,
    ReportLevel,
)
from azure.kusto.ingest.base_ingest_client import IngestionStatus
from azure.kusto.ingest.exceptions import KustoQueueError

from pipelines.batch import BatchFile
from pipelines.errors import (
    IngestionFailed,
    KustoThrottled,
    KustoUnavailable,
    SinkError,
)

log = logging.getLogger(__name__)

# Each submission gets a source id of its own: the SDK names the blob after it and never
# overwrites a blob, so a batch submitted again (after a transient failure, or by a replay)
# needs a new one. A batch's identity lives in its tags; the source id only tells this
# submission's status apart from an earlier one's.
_NOT_FOUND = "BadRequest_EntityNotFound"
_BATCH_TAG = re.compile(
    r"^ingest-by:(?P<topic>[^/]+)/(?P<partition>\d+)/(?P<first>\d+)-(?P<last>\d+)"
)


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


@contextlib.contextmanager
def kusto_errors(what: str) -> Iterator[None]:
    """Translate Kusto SDK and Azure errors into the sink's own, at one boundary."""
    try:
        yield
    except SinkError:
        raise
    except KustoThrottlingError as e:
        raise KustoThrottled(f"{what}: Kusto is throttling requests ({e})") from e
    except KustoApiError as e:
        api_error = e.get_api_error()
        if api_error.permanent:
            raise IngestionFailed(
                f"{what}: {api_error.description}", permanent=True, error_code=api_error.code
            ) from e
        raise KustoUnavailable(f"{what}: {api_error.description}") from e
    except (KustoNetworkError, KustoServiceError, AzureError, OSError) as e:
        text, cause = _without_sas(e)
        raise KustoUnavailable(f"{what}: {text}") from cause
    except KustoBlobError as e:
        # The SDK wraps every failed blob upload (storage unreachable, 5xx) into this.
        text, cause = _without_sas(e.inner, e)
        raise KustoUnavailable(f"{what}: uploading to Azure Storage failed: {text}") from cause
    except KustoQueueError as e:
        text, cause = _without_sas(e)
        raise KustoUnavailable(f"{what}: queueing in Azure Storage failed: {text}") from cause
    except KustoError as e:
        text, cause = _without_sas(e)
        raise IngestionFailed(f"{what}: {text}", permanent=True) from cause


# A storage URL's query string is its SAS token: a credential.
_URL_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")


def _without_sas(
    error: BaseException, chained: BaseException | None = None
) -> tuple[str, BaseException | None]:
    """``error``'s text with URL query strings (SAS tokens) cut out, and the exception to
    chain: none when something was cut, since a chained cause's text reaches logs too."""
    text = str(error)
    clean = _URL_QUERY.sub(r"\1?<redacted>", text)
    return clean, (chained or error) if clean == text else None


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
        spans = []
        for tag in self._batch_tags(target, topic, partition):
            match = _BATCH_TAG.match(tag)
            if match:
                spans.append((int(match["first"]), int(match["last"])))
        return spans

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
        reported failed since they were submitted, each with its failure."""
        groups: dict[tuple[IngestTarget, str, int], list[Receipt]] = {}
        for receipt in receipts:
            if not receipt.confirmed:
                groups.setdefault(receipt.key, []).append(receipt)
        failed: list[tuple[Receipt, IngestionFailed]] = []
        now = datetime.now(UTC)
        for (target, topic, partition), group in groups.items():
            tags = set(self._batch_tags(target, topic, partition))
            for receipt in group:
                if f"ingest-by:{receipt.batch.batch_id}" in tags:
                    receipt.confirmed = True
                    receipt.confirm_seconds = (now - receipt.submitted_at).total_seconds()
            unconfirmed = [r for r in group if not r.confirmed]
            if unconfirmed:
                failed += self._failures(target, unconfirmed)
        return failed

    def _failures(
        self, target: IngestTarget, receipts: list[Receipt]
    ) -> list[tuple[Receipt, IngestionFailed]]:
        by_source = {str(r.source_id): r for r in receipts}
        found: dict[str, tuple[Receipt, IngestionFailed]] = {}
        with kusto_errors(f"reading ingestion failures of {target.database}"):
            response = self._mgmt(target.database, ".show ingestion failures")
        for row in response.primary_results[0]:
            path = str(row["IngestionSourcePath"] or "")
            sid = next((sid for sid in by_source if sid in path), None)
            if sid is None or _as_utc(row["FailedOn"]) < by_source[sid].submitted_at:
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

    def _batch_tags(self, target: IngestTarget, topic: str, partition: int) -> list[str]:
        prefix = f"ingest-by:{topic}/{partition}/"
        command = (
            f".show table ['{target.table}'] extents where tags contains '{_kql_escape(prefix)}'"
        )
        try:
            with kusto_errors(f"listing extents of {target.database}.{target.table}"):
                response = self._mgmt(target.database, command)
        except IngestionFailed as error:
            if error.error_code == _NOT_FOUND:
                # A dropped table holds no batch; its ingestions fail and say why.
                return []
            raise
        tags: list[str] = []
        for row in response.primary_results[0]:
            tags.extend(t for t in str(row["Tags"] or "").split("\r\n") if t.startswith(prefix))
        return tags

    def _mgmt(self, database: str, command: str) -> KustoResponseDataSet:
        properties = ClientRequestProperties()
        properties.set_option(
            ClientRequestProperties.request_timeout_option_name,
            timedelta(seconds=self.request_timeout_s),
        )
        return self._query.execute_mgmt(database, command, properties)

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


def _kql_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _as_utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
