"""Run the registry inside the current process, for tests that need one without the devstack."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from devstack.schema_registry.app import build_app
from devstack.schema_registry.store import SchemaStore


@contextmanager
def running_registry(data_dir: Path, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Serve a registry on a free loopback port; yields its URL, stops it on exit."""
    store = SchemaStore(data_dir)
    config = uvicorn.Config(build_app(store), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="schema-registry", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"schema registry did not start within {start_timeout_s} s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
