"""On the local stack: failures that outlast the retries reach the misc dead-letter topic
(the reference never sends them there, its issue #130)."""

from __future__ import annotations

import httpx
import pytest
from parity_helpers import drain, note_table, notes, read_topic

pytestmark = pytest.mark.stack


def test_transient_failures_that_outlast_the_retries_go_to_the_misc_topic(
    stack, kusto, kusto_db, make_topic, produce, settings_file
) -> None:
    topic, dlq, misc = (make_topic(partitions=1) for _ in range(3))
    note_table(kusto, kusto_db, "Notes")
    produce(topic, notes(0, 3))
    path = settings_file(
        topic,
        [{"topic": topic, "db": kusto_db, "table": "Notes", "format": "json", "mapping": "notes"}],
        behavior_on_error="log",
        dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": dlq},
        misc_dead_letter={"bootstrap_servers": stack.bootstrap_servers, "topic": misc},
        retry={"max_time_ms": 3000, "backoff_ms": 200},
    )
    faults = f"{stack.kusto_url}/emulator/faults"
    body = {"kind": "ingestion", "failure": "transient", "count": 1000, "database": kusto_db}
    httpx.post(faults, json=body, timeout=10).raise_for_status()
    try:
        (report,) = drain(path)
    finally:
        httpx.delete(faults, params={"database": kusto_db}, timeout=10).raise_for_status()
    assert report.misc_dead_lettered == 3 and report.rows == 0
    letters = read_topic(stack.bootstrap_servers, misc, 3)
    assert sorted(m.value() for m in letters) == sorted(value for _, value, _ in notes(0, 3))
