"""The operator's view in a real browser: Debian's Chromium, driven by Playwright, opens the
UI of a running `dagster dev` and finds the jobs, the sensors, the batch assets with their
metadata, the lag plot and the reconciliation check, then launches a backfill of a time
window from the launchpad and sees exactly its rows land. Screenshots go to
``test-output/screenshots/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from confluent_kafka import Producer

from pipelines.definitions import build_definitions
from pipelines.jobs import run_config, run_tags
from pipelines.runtime import SinkRuntime

# Setup starts `dagster dev` and records the sink's history: ~90 s on a quiet machine,
# much more on a busy one (dagster dev alone took 130 s to serve at a load of 19).
pytestmark = [pytest.mark.stack, pytest.mark.timeout(480)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BASE_TIME = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
RECORDS = 400
MAPPING = json.dumps(
    [
        {"column": "id", "Properties": {"Path": "$.id"}},
        {"column": "at", "Properties": {"Path": "$.at"}},
    ]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The live sensors of `dagster dev` may queue runs, which never start: the records of this
# test are delivered by the test itself, and only the backfill launched from the UI runs.
INSTANCE_SETTINGS = """
storage:
  sqlite:
    base_dir:
      env: DAGSTER_HOME
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    tag_concurrency_limits:
      - key: kusto-sink/sink
        limit: 0
telemetry:
  enabled: false
"""


@dataclass
class Sink:
    topic: str
    db: str
    config: Path
    home: Path
    kusto: KustoClient
    produce: Callable[..., None]


@pytest.fixture
def sink(stack, make_topic, unique_name, write_settings, tmp_path, monkeypatch) -> Iterator[Sink]:
    """A sink's settings, topic and tables, and a DAGSTER_HOME for it."""
    kusto = KustoClient(KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url))
    topic, db = make_topic(partitions=2), unique_name
    kusto.execute_mgmt(None, f".create database {db} ifnotexists")
    for table in ("Events", "Audit"):
        kusto.execute_mgmt(db, f".create table {table} (id:long, at:datetime)")
        kusto.execute_mgmt(db, f".create table {table} ingestion json mapping 'ids' '{MAPPING}'")
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "linger.ms": 20})

    def produce(ids: range, at: datetime | None = None) -> None:
        for i in ids:
            moment = at or BASE_TIME + timedelta(seconds=i)
            value = json.dumps({"id": i, "at": moment.isoformat()}).encode()
            producer.produce(
                topic, value=value, partition=i % 2, timestamp=int(moment.timestamp() * 1000)
            )
        assert producer.flush(30) == 0

    mapping = {"topic": topic, "db": db, "table": "Events", "format": "json", "mapping": "ids"}
    config = write_settings(
        topic, [mapping], value_converter={"kind": "json"}, flush_size_bytes=4_000
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_SETTINGS)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("KUSTO_SINK_CONFIG", str(config))
    yield Sink(topic, db, config, home, kusto, produce)
    kusto.close()


def record_history(sink: Sink) -> None:
    """Delivered batches, status ticks while records pile up and after a drain (the lag
    plot rises and falls), and a reconciliation, all in the sink's DAGSTER_HOME."""
    sink.produce(range(RECORDS))
    defs = build_definitions(str(sink.config))
    (status_sensor,) = [s for s in defs.sensors if s.name.endswith("_status")]
    deliver = defs.get_job_def("deliver_ranges")
    with dg.DagsterInstance.get() as instance:

        def drain() -> None:
            with SinkRuntime(defs.resources["sink"].settings) as runtime:
                ranges = runtime.plan()
            delivered = deliver.execute_in_process(
                run_config=run_config(ranges),
                instance=instance,
                resources=defs.resources,
                # As the sensors tag theirs, so the runs list says what each run did.
                tags=run_tags(sink.topic, ranges),
            )
            assert delivered.success

        drain()
        cursor = None
        for more in (10, 30, 60, 0):
            if more:
                late = datetime.now(UTC) - timedelta(minutes=5)
                sink.produce(range(10_000, 10_000 + more), at=late)
            else:
                drain()
            with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
                tick = status_sensor.evaluate_tick(context)
            cursor = tick.cursor
            for event in tick.asset_events:
                instance.report_runless_asset_event(event)
        checked = defs.resolve_job_def("reconcile").execute_in_process(
            instance=instance, resources=defs.resources
        )
        assert checked.success


@pytest.fixture
def dagster_dev(sink: Sink) -> Iterator[str]:
    """`dagster dev` on the sink's definitions, its history recorded while it starts; its
    URL. Stopped by SIGINT, then what is left of it killed."""
    port = free_port()
    log = (sink.home / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        record_history(sink)
        wait_for_location(url, process)
        yield url
    finally:
        # The daemon runs in a session of its own: note it before its parent goes.
        spawned = children(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in spawned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: no psutil here)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # After the command name in parentheses: state, then the parent's pid.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def wait_for_location(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    query = "{workspaceOrError{... on Workspace{locationEntries{name loadStatus}}}}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited"
        try:
            answer = httpx.post(f"{url}/graphql", json={"query": query}, timeout=5).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (httpx.HTTPError, KeyError, TypeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"dagster dev did not load its code location within {timeout_s}s")


def wait_for_rows(
    kusto: KustoClient, db: str, table: str, rows: int, timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = kusto.execute_query(db, f"{table} | count").primary_results[0][0]["Count"]
        if count >= rows:
            return
        time.sleep(1)
    raise AssertionError(f"{db}.{table} has {count} rows after {timeout_s:.0f}s, not {rows}")


def test_operator_finds_everything_and_backfills_from_the_launchpad(sink, dagster_dev):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    topic, db = sink.topic, sink.db
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(20_000)

        def dismiss_dialog() -> None:
            skip = page.get_by_role("button", name="Skip")
            if skip.is_visible():  # Dagster's one-time "join the community" dialog
                skip.click()

        # The dialog shows once, a moment after the first page loads.
        page.goto(f"{dagster_dev}/overview/jobs")
        with contextlib.suppress(PlaywrightTimeout):
            page.get_by_role("button", name="Skip").click(timeout=8_000)

        def show(
            path: str,
            expect: list[str],
            name: str,
            click: str | None = None,
            top: str | None = None,
        ) -> None:
            page.goto(f"{dagster_dev}{path}")
            if click:
                page.get_by_text(click, exact=True).first.wait_for()
                dismiss_dialog()
                page.get_by_text(click, exact=True).first.click()
            for text in expect:
                page.get_by_text(text, exact=False).first.wait_for()
            dismiss_dialog()
            page.get_by_text(expect[-1], exact=False).first.scroll_into_view_if_needed()
            if top:
                page.get_by_text(top, exact=True).first.evaluate(
                    "title => title.scrollIntoView({block: 'start'})"
                )
            # Rows, run histories and charts fill in after their titles; the UI's polling
            # may never leave the network idle, hence the bounded wait.
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_load_state("networkidle", timeout=5_000)
            page.wait_for_timeout(1_000)
            page.screenshot(path=SCREENSHOTS / f"{name}.png")

        show("/overview/jobs", ["deliver_ranges", "backfill", "reconcile"], "01-jobs")
        sensors = [f"{topic}_lag", f"{topic}_interval", f"{topic}_status"]
        show("/overview/automation", sensors, "02-sensors")
        batch = ["batch_id", "ingestion_mode", "enqueue_seconds", "retries_used"]
        show(f"/assets/kusto/{db}/Events", batch, "03-batch-asset")
        lag = ["lag_records", "lag_records[0]", "lag_records[1]"]
        show(f"/assets/kafka/{topic}", lag, "04-lag-plot", click="Plots", top="lag_records")
        show(f"/assets/kusto/{db}/Events?view=checks", ["reconciled"], "05-reconciliation")

        # A backfill of a time window, launched from the launchpad's config editor.
        window = {
            "topic": topic,
            "from_time": (BASE_TIME + timedelta(seconds=100)).isoformat(),
            "to_time": (BASE_TIME + timedelta(seconds=250)).isoformat(),
            "table": "Audit",
        }
        # Steps in the run's own process: no process to start per step.
        launch_config = yaml.safe_dump(
            {
                "ops": {"plan_backfill": {"config": window}},
                "execution": {"config": {"in_process": {}}},
            }
        )
        page.goto(f"{dagster_dev}/overview/jobs")
        page.get_by_text("backfill", exact=True).first.click()
        page.get_by_text("Launchpad", exact=True).first.click()
        dismiss_dialog()
        editor = page.locator(".CodeMirror").first
        editor.wait_for()
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(launch_config)
        page.get_by_text("No errors").first.wait_for()
        page.screenshot(path=SCREENSHOTS / "06-launchpad.png")
        page.get_by_role("button", name="Launch Run").click()
        page.wait_for_url("**/runs/**")
        wait_for_rows(sink.kusto, db, "Audit", 150)
        page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
        # The step chart catches up with the run's end a moment after its status does.
        page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=SCREENSHOTS / "07-backfill-run.png")
        # Last a plain cell: scrolling a clipped tag into view would shift the table sideways.
        runs = [f"backfill {topic}[all]", f"ingest {topic}[", "deliver_ranges"]
        show("/runs", runs, "08-runs")
        browser.close()

    ids = sink.kusto.execute_query(db, "Audit | project id").primary_results[0]
    assert sorted(int(row["id"]) for row in ids) == list(range(100, 250))
