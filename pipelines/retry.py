"""Retries of transient errors: exponential back-off with jitter, within a total time.

The sink's errors carry their own mark (:attr:`pipelines.errors.SinkError.transient`); this
module is the one place that acts on it. A transient error is retried until the retry time
(``errors.retry.max.time.ms``) is spent, waiting ``errors.retry.backoff.time.ms`` first and
twice as long each time after, plus up to one back-off of random jitter so that partitions
failing together do not retry in step. Then the error goes up: the Dagster step fails, and
run retries (``FROM_FAILURE``) and later sensor ticks take over. Terminal errors are never
retried.

Usage::

    policy = RetryPolicy.from_settings(settings.retry)
    spans = policy.call("listing extents", lambda: ingestor.delivered_spans(...))
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from pipelines.config import RetrySettings
from pipelines.plan import OffsetRange
from pipelines.records import KafkaRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

# One wait never exceeds this, however long the total retry time: a service that is back
# should not sit idle for minutes before the sink notices.
MAX_SINGLE_WAIT_S = 60.0


def is_transient(error: BaseException) -> bool:
    """Whether retrying can help: the sink's own mark, never a guess from the type."""
    return bool(getattr(error, "transient", False))


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often transient errors are retried."""

    max_time_s: float
    backoff_s: float

    @classmethod
    def from_settings(cls, retry: RetrySettings) -> RetryPolicy:
        return cls(max_time_s=retry.max_time_ms / 1000, backoff_s=retry.backoff_ms / 1000)

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        exponential = self.backoff_s * 2 ** (failures - 1)
        # Capped so that the retry time holds about eight tries even after long outages.
        cap = min(MAX_SINGLE_WAIT_S, max(self.backoff_s, self.max_time_s / 8))
        return min(cap, exponential) + random.uniform(0, self.backoff_s)

    def call(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried on transient errors until the retry time is spent.

        The retry time counts from the first failure, so an attempt that itself waited long
        (a client's own timeout) still gets its retries.
        """
        failed_at: list[float] = []

        def spent() -> float:
            if not failed_at:
                failed_at.append(time.monotonic())
            return time.monotonic() - failed_at[0]

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            # tenacity asks whether to stop right after each failed attempt, before waiting.
            stop=lambda _: spent() >= self.max_time_s,
            wait=lambda state: max(
                0.0, min(self.delay(state.attempt_number), self.max_time_s - spent())
            ),
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )
        return retrying(call)

    def read(
        self, read: Callable[[OffsetRange], Iterable[Sequence[KafkaRecord]]], rng: OffsetRange
    ) -> Iterator[Sequence[KafkaRecord]]:
        """``read(rng)``, resumed after the last record seen when it fails transiently.

        The retry time counts from the first failure since records last arrived, so a long
        read that meets a broker restart near its end still gets the whole retry time.
        """
        position, failures, failing_since = rng.start, 0, 0.0
        while position < rng.end:
            try:
                for records in read(OffsetRange(rng.topic, rng.partition, position, rng.end)):
                    yield records
                    if records:
                        position = max(position, (records[-1].offset() or 0) + 1)
                        failures = 0
                return
            except Exception as error:
                if not is_transient(error):
                    raise
                now = time.monotonic()
                failures, failing_since = failures + 1, failing_since if failures else now
                if now - failing_since >= self.max_time_s:
                    raise
                wait = min(self.delay(failures), self.max_time_s - (now - failing_since))
                log.warning(
                    "reading %s failed at offset %d (%s); retrying in %.1fs",
                    rng,
                    position,
                    error,
                    wait,
                )
                time.sleep(wait)


def _log_retry(what: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "%s failed (attempt %d): %s; retrying in %.1fs", what, state.attempt_number, error, sleep
    )
