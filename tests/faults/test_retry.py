"""The retry policy without servers: transient errors retried within the retry time,
terminal ones not at all, reads resumed after the last record seen."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pipelines.errors import KafkaUnavailable, KustoUnavailable, TerminalError
from pipelines.plan import OffsetRange
from pipelines.retry import RetryPolicy

FAST = RetryPolicy(max_time_s=0.5, backoff_s=0.02)


def test_transient_errors_are_retried_until_they_pass() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise KustoUnavailable("503")
        return "ok"

    assert FAST.call("asking Kusto", flaky) == "ok"
    assert len(attempts) == 3


def test_transient_errors_give_up_once_the_retry_time_is_spent() -> None:
    calls: list[float] = []

    def down() -> None:
        calls.append(time.monotonic())
        raise KustoUnavailable("unreachable")

    with pytest.raises(KustoUnavailable):
        FAST.call("asking Kusto", down)
    assert len(calls) >= 3
    assert calls[-1] - calls[0] < FAST.max_time_s + 2 * FAST.backoff_s


def test_terminal_errors_are_not_retried() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise TerminalError("bad mapping")

    with pytest.raises(TerminalError):
        FAST.call("asking Kusto", refused)
    assert calls == [1]


def test_back_off_doubles_with_jitter_of_at_most_one_back_off() -> None:
    policy = RetryPolicy(max_time_s=100, backoff_s=1.0)
    # Capped at an eighth of the retry time: 12.5 s.
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 12.5), (9, 12.5)]:
        delay = policy.delay(failures)
        assert base <= delay <= base + 1.0


class _Record:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


def test_a_read_resumes_after_the_last_record_seen() -> None:
    asked: list[tuple[int, int]] = []

    def read(rng: OffsetRange) -> Iterator[list[_Record]]:
        asked.append((rng.start, rng.end))
        yield [_Record(rng.start)]
        if len(asked) == 1:
            raise KafkaUnavailable("broker gone", topic=rng.topic, partition=rng.partition)
        yield [_Record(o) for o in range(rng.start + 1, rng.end)]

    parts = list(FAST.read(read, OffsetRange("t", 0, 10, 15)))  # type: ignore[arg-type]

    assert [r.offset() for part in parts for r in part] == [10, 11, 12, 13, 14]
    assert asked == [(10, 15), (11, 15)]


def test_the_retry_time_counts_from_the_first_failure() -> None:
    """An attempt that waited out a client's own timeout still gets its retries."""
    attempts: list[int] = []

    def slow_then_fine() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(FAST.max_time_s + 0.1)
            raise KafkaUnavailable("coordinator not ready")
        return "ok"

    assert FAST.call("reading the committed offset", slow_then_fine) == "ok"
    assert len(attempts) == 2
