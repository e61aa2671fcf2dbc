"""The error hierarchy: every error transient or terminal, messages naming what failed."""

from __future__ import annotations

import pytest

from pipelines import errors
from pipelines.errors import (
    CommitConflict,
    ConfigError,
    DecodeError,
    IngestionFailed,
    KafkaUnavailable,
    KustoThrottled,
    KustoUnavailable,
    NotConfirmed,
    Problem,
    SinkError,
    TerminalError,
    TransientError,
)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (KafkaUnavailable("broker down"), True),
        (KustoThrottled("429"), True),
        (KustoUnavailable("503"), True),
        (NotConfirmed("no status yet"), True),
        (IngestionFailed("bad mapping", permanent=True), False),
        (IngestionFailed("storage hiccup", permanent=False), True),
        (ConfigError("bad"), False),
        (CommitConflict("moved", topic="t", partition=0, start=0, end=5, committed=7), False),
        (DecodeError("not json", topic="t", partition=0, offset=3), False),
    ],
)
def test_every_error_is_marked_transient_or_terminal(error: SinkError, transient: bool) -> None:
    assert isinstance(error, SinkError)
    assert error.transient is transient


def test_marks_follow_the_two_branches() -> None:
    assert TransientError.transient is True
    assert TerminalError.transient is False
    assert issubclass(ConfigError, TerminalError)
    assert issubclass(KustoThrottled, TransientError)


def test_messages_name_topic_partition_offsets_and_table() -> None:
    conflict = CommitConflict(
        "committed offset moved", topic="orders", partition=2, start=10, end=20, committed=15
    )
    assert str(conflict) == (
        "committed offset moved (topic=orders partition=2 offsets=[10,20) committed=15)"
    )
    decode = DecodeError("not valid JSON", topic="orders", partition=1, offset=42)
    assert str(decode) == "not valid JSON (topic=orders partition=1 offset=42)"
    assert (decode.topic, decode.partition, decode.offset) == ("orders", 1, 42)
    failed = IngestionFailed("mapping missing", permanent=True, table="db.T", batch_id="o/1/0-9")
    assert str(failed) == "mapping missing (table=db.T batch=o/1/0-9)"
    assert str(KafkaUnavailable("timed out", topic="orders")) == "timed out (topic=orders)"
    assert str(KustoUnavailable("unreachable")) == "unreachable"


def test_config_error_lists_each_problem_with_its_setting() -> None:
    error = ConfigError(
        [Problem("kusto.ingestion_url", "required"), Problem("topics", "set one of them")]
    )
    assert str(error) == (
        "invalid sink settings (2 problems):\n"
        "  - kusto.ingestion_url: required\n"
        "  - topics: set one of them"
    )
    single = ConfigError("not set", setting="name")
    assert single.problems == [Problem("name", "not set")]
    assert str(single) == "invalid sink settings: name: not set"


def test_hierarchy_is_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in ("SinkError", "TransientError", "TerminalError", "ConfigError", "NotConfirmed"):
        assert name in doc
