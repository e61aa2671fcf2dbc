"""The sink's errors: one hierarchy, every error transient or terminal.

Retry policy reads only the ``transient`` mark; nothing else decides whether to retry::

    SinkError                      transient: bool (class attribute)
    ├── TransientError             worth retrying with back-off
    │   ├── KafkaUnavailable       broker unreachable, request timed out
    │   ├── KustoThrottled         Kusto answered 429
    │   ├── KustoUnavailable       Kusto unreachable or 5xx
    │   └── NotConfirmed           ingestion not confirmed before the deadline
    ├── TerminalError              retrying cannot help; stop (or dead-letter)
    │   ├── ConfigError            invalid settings, one line per problem
    │   ├── CommitConflict         committed offset is not the range start
    │   └── DecodeError            one record cannot be decoded (per record)
    └── IngestionFailed            Kusto refused a batch; ``permanent`` decides

A permanent :class:`IngestionFailed` whose ``error_code`` says the data itself is bad
(:meth:`IngestionFailed.blames_records`) is narrowed down to the records at fault; any other
refusal covers the whole batch.

Messages name what is at fault as ``key=value`` pairs (``topic=``, ``partition=``,
``offsets=``, ``table=``, ``setting=``) so logs can be searched, and never carry secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def _describe(message: str, **context: object) -> str:
    """``message`` followed by the non-empty ``context`` as ``key=value`` pairs."""
    pairs = " ".join(f"{key}={value}" for key, value in context.items() if value is not None)
    return f"{message} ({pairs})" if pairs else message


def _offsets(start: int | None, end: int | None) -> str | None:
    """An offset range as ``[start, end)``, the way plans and batch ids speak of it."""
    if start is None:
        return None
    return f"[{start},{end})" if end is not None else str(start)


class SinkError(Exception):
    """Base of every error the sink raises on purpose."""

    transient: bool = False


class TransientError(SinkError):
    """A failure that may go away: retry with back-off."""

    transient = True


class TerminalError(SinkError):
    """A failure that retrying cannot fix."""

    transient = False


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, and the setting it concerns."""

    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}" if self.setting else self.message


class ConfigError(TerminalError):
    """The settings are invalid; ``problems`` lists each fault with its setting."""

    def __init__(self, problems: Sequence[Problem] | str, *, setting: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(setting, problems)]
        self.problems: list[Problem] = list(problems)
        if len(self.problems) == 1:
            text = f"invalid sink settings: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            text = f"invalid sink settings ({len(self.problems)} problems):\n{lines}"
        super().__init__(text)


class KafkaUnavailable(TransientError):
    """Kafka could not be reached or did not answer in time."""

    def __init__(
        self, message: str, *, topic: str | None = None, partition: int | None = None
    ) -> None:
        self.topic, self.partition = topic, partition
        super().__init__(_describe(message, topic=topic, partition=partition))


class _KustoError(SinkError):
    """Shared constructor of errors about one Kusto table and, maybe, one batch."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        batch_id: str | None = None,
    ) -> None:
        self.table, self.batch_id = table, batch_id
        super().__init__(_describe(message, table=table, batch=batch_id))


class KustoThrottled(_KustoError, TransientError):
    """Kusto asked the sink to slow down (HTTP 429)."""


class KustoUnavailable(_KustoError, TransientError):
    """Kusto could not be reached or failed on its side (5xx, timeouts)."""


class NotConfirmed(_KustoError, TransientError):
    """Kusto did not confirm a batch before the deadline; it may still arrive."""


class IngestionFailed(_KustoError):
    """Kusto reported a batch as failed; transient unless ``permanent``."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        table: str | None = None,
        batch_id: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.permanent = permanent
        self.transient = not permanent  # the mark depends on what Kusto said, per instance
        self.error_code = error_code
        super().__init__(message, table=table, batch_id=batch_id)

    def blames_records(self) -> bool:
        """Whether Kusto refused the batch for its content (a record it cannot parse), so
        the records at fault can be found by splitting the batch; a missing table or mapping
        would refuse every part of it alike."""
        code = self.error_code or ""
        return self.permanent and (code in _RECORD_ERROR_CODES or code.startswith("Stream_"))


# Kusto's error codes for content it cannot parse ("Stream_*" are its parser's errors).
_RECORD_ERROR_CODES = frozenset(
    {"BadRequest_InvalidBlob", "BadRequest_NoRecordsOrWrongFormat", "BadRequest_EmptyBlob"}
)


class CommitConflict(TerminalError):
    """The committed offset moved away from the range start: another run got there."""

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        partition: int,
        start: int,
        end: int,
        committed: int | None,
    ) -> None:
        self.topic, self.partition = topic, partition
        self.start, self.end, self.committed = start, end, committed
        super().__init__(
            _describe(
                message,
                topic=topic,
                partition=partition,
                offsets=_offsets(start, end),
                committed=committed,
            )
        )


class DecodeError(TerminalError):
    """One record cannot be decoded; terminal for that record, which is dead-lettered."""

    def __init__(
        self,
        message: str,
        *,
        topic: str | None,
        partition: int | None,
        offset: int | None,
    ) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        super().__init__(_describe(message, topic=topic, partition=partition, offset=offset))
