"""Fault matrix rows 1, 2 and 10: a sink killed mid-range, and two sinks racing on a range."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from fault_helpers import POISON, FaultSink, Ledger, read_topic

from pipelines.commit import SinkFenced
from pipelines.deliver import CRASH_AT_ENV
from pipelines.errors import CommitConflict

pytestmark = pytest.mark.stack

# A sink process: every planned range, delivered in order.
SINK_PROCESS = """
import sys
from pipelines.config import load_settings
from pipelines.runtime import SinkRuntime
with SinkRuntime(load_settings(sys.argv[1])) as runtime:
    for outcome in runtime.deliver_all(runtime.plan()):
        if isinstance(outcome, Exception):
            raise outcome
"""


def run_sink_process(path: Path, crash_at: str | None = None) -> int:
    env = dict(os.environ)
    env.pop(CRASH_AT_ENV, None)
    if crash_at:
        env[CRASH_AT_ENV] = crash_at
    done = subprocess.run(
        [sys.executable, "-c", SINK_PROCESS, str(path)], env=env, timeout=180, check=False
    )
    return done.returncode


@pytest.mark.parametrize(
    ("crash_at", "fault"),
    [
        ("after_first_submit", "1. SIGKILL after the first blob was queued, before the commit"),
        ("before_commit", "2. SIGKILL between confirmation and commit"),
    ],
)
def test_a_sink_killed_before_its_commit_delivers_once_when_started_again(
    fault_sink, ledger: Ledger, crash_at: str, fault: str
) -> None:
    sink: FaultSink = fault_sink(partitions=2)
    records = ledger.events(300)
    ledger.produce(sink.topics[0], records[:150] + POISON + records[150:], partitions=2)

    assert run_sink_process(sink.path, crash_at) == -signal.SIGKILL
    with sink.runtime() as runtime:
        assert all(s.committed is None for s in runtime.partition_states().values())

    assert run_sink_process(sink.path) == 0
    with sink.runtime() as runtime:
        row = ledger.check(fault, sink.tables, sink.dead_letter_topics, runtime)
    assert row["in_dlq"] == len(POISON)


def test_two_sinks_on_one_group_commit_a_range_once(fault_sink, ledger: Ledger) -> None:
    sink: FaultSink = fault_sink(partitions=1)
    ledger.produce(sink.topics[0], ledger.events(200) + POISON)
    with sink.runtime() as planner:
        (rng,) = planner.plan()
    outcomes: list[BaseException | None] = []

    def one_sink() -> None:
        try:
            with sink.runtime() as runtime:
                runtime.deliver(rng)
        except BaseException as error:  # noqa: BLE001 - the test looks at every outcome
            outcomes.append(error)
        else:
            outcomes.append(None)

    sinks = [threading.Thread(target=one_sink) for _ in range(2)]
    for thread in sinks:
        thread.start()
    for thread in sinks:
        thread.join(120)

    assert len(outcomes) == 2 and outcomes.count(None) == 1, outcomes
    (refused,) = [o for o in outcomes if o is not None]
    assert isinstance(refused, CommitConflict | SinkFenced), refused
    with sink.runtime() as runtime:
        row = ledger.check(
            "10. two sinks on one group and partition",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )
    assert row["in_dlq"] == len(POISON)


def test_dead_letters_on_another_cluster_are_written_once_across_a_crash(
    fault_sink, ledger: Ledger
) -> None:
    """A dead-letter topic outside the source cluster cannot join the commit's transaction:
    letters written before a crash are found in its tail and not written again."""
    # Another address of the same broker: the sink sees another cluster.
    elsewhere = ledger.stack.bootstrap_servers.replace("127.0.0.1", "localhost")
    sink: FaultSink = fault_sink(partitions=1)
    settings = yaml.safe_load(sink.path.read_text())
    for key in ("dead_letter", "misc_dead_letter"):
        settings[key]["bootstrap_servers"] = elsewhere
    sink.path.write_text(yaml.safe_dump(settings))
    records = ledger.events(200)
    ledger.produce(sink.topics[0], records[:100] + POISON + records[100:])
    with sink.runtime() as runtime:
        assert runtime.dead_letters is not None and runtime.dead_letters.writer is not None

    assert run_sink_process(sink.path, "before_commit") == -signal.SIGKILL
    assert len(read_topic(ledger.stack, sink.dead_letter_topics[0])) == len(POISON)

    assert run_sink_process(sink.path) == 0
    with sink.runtime() as runtime:
        row = ledger.check(
            "2b. SIGKILL after dead letters went to another cluster, before the commit",
            sink.tables,
            sink.dead_letter_topics,
            runtime,
        )
    assert row["in_dlq"] == len(POISON)
