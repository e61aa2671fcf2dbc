"""`kusto-sink devstack demo` (what `make demo` runs): the Dagster UI answers with the
project's definitions, and Ctrl-C stops what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoServiceError

from devstack.process import free_port
from devstack.stack import StackConfig, status

pytestmark = pytest.mark.stack

KUSTO_SINK = Path(sys.executable).with_name("kusto-sink")
WORKSPACE_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def wait_for_workspace(url: str, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(f"{url}/graphql", json={"query": WORKSPACE_QUERY}, timeout=5)
            entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return list(entries)
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"the Dagster UI at {url} did not load the workspace in {timeout} s")


def processes_with_argument(argument: str) -> list[int]:
    """Pids of live processes whose command line has `argument` (e.g. the UI's port)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended while we looked
        if argument.encode() in arguments:
            pids.append(int(cmdline.parent.name))
    return pids


def test_demo_serves_the_definitions_and_stops_on_ctrl_c(stack: StackConfig) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [str(KUSTO_SINK), "devstack", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        entries = wait_for_workspace(f"http://127.0.0.1:{port}", timeout=120)
        assert entries[0]["name"] == "pipelines.definitions:defs"
        assert entries[0]["locationOrLoadError"] == {"__typename": "RepositoryLocation"}, entries
        # The demo's producer and sensors at work: rows reach each of the demo's tables.
        assert rows_arrive(stack, ("Orders", "Clicks", "Payments"), timeout=150)

    finally:
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = demo.communicate(timeout=90)

    assert b"stopping dagster dev" in output
    assert not httpx_answers(f"http://127.0.0.1:{port}/server_info")
    assert processes_with_argument(str(port)) == [], "dagster processes left running"
    assert all(server.healthy for server in status(stack)), "demo stopped servers it reused"


def rows_arrive(stack: StackConfig, tables: tuple[str, ...], timeout: float) -> bool:
    kusto = KustoClient(KustoConnectionStringBuilder.with_no_authentication(stack.kusto_url))
    deadline = time.monotonic() + timeout
    with kusto:
        while time.monotonic() < deadline:
            try:
                counts = [
                    kusto.execute_query("demo", f"{t} | count").primary_results[0][0][0]
                    for t in tables
                ]
            except KustoServiceError:
                counts = [0]  # the demo has not made its tables yet
            if all(counts):
                return True
            time.sleep(2)
    return False


def httpx_answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True
