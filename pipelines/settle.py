"""Settle submitted batches: wait until Kusto holds each one, or has refused it for good.

Kusto answers a queued batch in one of three ways, and each gets its own treatment:

- its tag shows up in the table's extents: confirmed;
- a transient failure (storage hiccup, throttled ingestion): the same file is submitted
  again after a back-off, until the retry time (``errors.retry.max.time.ms``) counted from
  its first failure is spent; then it is refused;
- a permanent failure: refused. When the failure blames the content (a record Kusto cannot
  parse) and the caller can split batches, the batch is split in two halves, each
  submitted on its own, until the records at fault stand alone.

Nothing at all within the confirmation timeout is :class:`~pipelines.errors.NotConfirmed`:
the batch may still land, so it must not be dead-lettered; the step fails and is retried,
and a replay's ``ingestIfNotExists`` drops the batch if it landed meanwhile.

Polls start short and back off to the ingestor's poll interval: a batch small enough to
land in a fraction of a second is confirmed then, and a long wait costs few requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pipelines.errors import IngestionFailed, NotConfirmed
from pipelines.ingest import KustoIngestor, Receipt
from pipelines.retry import RetryPolicy

log = logging.getLogger(__name__)

FIRST_POLL_S = 0.1
POLL_GROWTH = 1.5


@dataclass(frozen=True)
class Refusal:
    """A batch Kusto will not take: refused permanently, or failing past the retry time."""

    receipt: Receipt
    error: IngestionFailed


@dataclass
class _Failing:
    failures: int
    since: float
    retry_at: float


def settle(
    receipts: Sequence[Receipt],
    *,
    ingestor: KustoIngestor,
    retry: RetryPolicy,
    resubmit: Callable[[Receipt], list[Receipt]],
    split: Callable[[Receipt], list[Receipt]] | None = None,
) -> tuple[list[Receipt], list[Refusal]]:
    """Wait for ``receipts``; returns the confirmed receipts (of split halves too) and the
    refusals. Raises NotConfirmed when a batch has no answer within the timeout."""
    confirmed = [r for r in receipts if r.confirmed]
    pending = [r for r in receipts if not r.confirmed]
    # Batches failed transiently: their failure history, and those waiting to go again.
    failing: dict[str, _Failing] = {}
    waiting: dict[str, Receipt] = {}
    refused: list[Refusal] = []
    poll_s = FIRST_POLL_S
    while pending or waiting:
        now = time.monotonic()
        for batch_id, receipt in list(waiting.items()):
            if failing[batch_id].retry_at <= now:
                del waiting[batch_id]
                pending += retry.call(f"resubmitting batch {batch_id}", partial(resubmit, receipt))
                poll_s = FIRST_POLL_S
        if pending:
            failed = retry.call(
                f"checking {len(pending)} batch(es) in Kusto",
                partial(ingestor.check, list(pending)),
            )
            for receipt, error in failed:
                pending.remove(receipt)
                batch_id = receipt.batch.batch_id
                if error.transient:
                    again = _failing_again(failing.get(batch_id), retry, now)
                    if now - again.since >= retry.max_time_s:
                        refused.append(Refusal(receipt, error))
                        continue
                    log.warning("%s; submitting it again in %.1fs", error, again.retry_at - now)
                    failing[batch_id], waiting[batch_id] = again, receipt
                elif split is not None and error.blames_records() and receipt.batch.records > 1:
                    log.warning("%s; splitting the batch to find the records at fault", error)
                    pending += split(receipt)
                    poll_s = FIRST_POLL_S
                else:
                    refused.append(Refusal(receipt, error))
            confirmed += [r for r in pending if r.confirmed]
            pending = [r for r in pending if not r.confirmed]
            _raise_if_late(pending, ingestor.confirm_timeout_s)
        if pending or waiting:
            pause = poll_s = min(poll_s, ingestor.poll_interval_s)
            poll_s *= POLL_GROWTH
            if waiting and not pending:
                # Only resubmissions ahead: sleep until the first one is due, no longer.
                due = min(failing[batch_id].retry_at for batch_id in waiting)
                pause = max(0.0, due - time.monotonic())
            time.sleep(pause)
    return confirmed, refused


def _failing_again(earlier: _Failing | None, retry: RetryPolicy, now: float) -> _Failing:
    failures = earlier.failures + 1 if earlier else 1
    since = earlier.since if earlier else now
    return _Failing(failures, since, now + retry.delay(failures))


def _raise_if_late(pending: list[Receipt], timeout_s: float) -> None:
    now = datetime.now(UTC)
    late = [r for r in pending if (now - r.submitted_at).total_seconds() > timeout_s]
    if late:
        ids = ", ".join(r.batch.batch_id for r in late[:5])
        raise NotConfirmed(
            f"Kusto did not confirm {len(late)} batch(es) within {timeout_s:.0f}s: {ids}"
        )
