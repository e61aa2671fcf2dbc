"""The queued-ingestion worker on its own (no servers): what it does with queue messages."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from devstack.kusto_emulator.faults import FaultRegistry
from devstack.kusto_emulator.queue_worker import QueueWorker
from devstack.kusto_emulator.store import KustoStore


class _Queue:
    """An ingestion queue that hands out two messages and records what is done with them."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, int]] = []

    def receive_messages(self, **_: object) -> list[SimpleNamespace]:
        return [SimpleNamespace(id="m1", content="x"), SimpleNamespace(id="m2", content="y")]

    def update_message(self, message: SimpleNamespace, visibility_timeout: int) -> None:
        self.updates.append((message.id, visibility_timeout))


def test_a_stopping_queue_worker_gives_back_the_messages_it_has_not_handled(
    tmp_path: Path,
) -> None:
    store = KustoStore(tmp_path / "kusto")
    queue = _Queue()
    storage = SimpleNamespace(queue=lambda name: queue)
    worker = QueueWorker(store, storage, FaultRegistry(), tmp_path)  # type: ignore[arg-type]
    worker._stop.set()  # stopping while a poll is under way

    worker.poll_once()

    assert queue.updates == [("m1", 0), ("m2", 0)]
