"""Without servers: which delivered batches reconciliation expects, counters' round trip
through the status sensor's cursor, and the progress bar of `kusto-sink status`."""

from __future__ import annotations

from pipelines.checks import DeliveredBatch, current_batches
from pipelines.metrics import Counters, Totals
from pipelines.plan import TopicPartition
from pipelines.status_cli import bar


def batch(partition: int, first: int, last: int, rows: int | None = None) -> DeliveredBatch:
    return DeliveredBatch(
        batch_id=f"orders/{partition}/{first}-{last}",
        topic="orders",
        partition=partition,
        first_offset=first,
        last_offset=last,
        rows=last - first + 1 if rows is None else rows,
        streamed=False,
    )


def test_a_replaced_range_expects_only_the_batches_that_replaced_it():
    live = [batch(0, 0, 99), batch(0, 100, 199), batch(0, 200, 299), batch(1, 0, 99)]
    # `replace` of 150-249 dropped 100-199 and 200-299 whole and cut them anew.
    replaced = [batch(0, 100, 179), batch(0, 180, 299)]
    kept = current_batches(iter(live + replaced))
    assert sorted((b.partition, b.first_offset) for b in kept) == [
        (0, 0),
        (0, 100),
        (0, 180),
        (1, 0),
    ]
    # The same batch loaded again (a gap filled) is expected once.
    assert len(current_batches(iter([batch(0, 0, 99), batch(0, 0, 99)]))) == 1


def test_counters_survive_the_sensor_cursor():
    totals = Totals({TopicPartition("orders", 2): Counters(records_written=5, dead_lettered=1)})
    totals.storage_id = 42
    again = Totals.from_json(totals.to_json())
    assert again == totals
    assert again.total("orders").records_written == 5 and again.total("other").records_written == 0


def test_progress_bar():
    assert bar(25, 100) == f"[{'#' * 7}{'.' * 23}]  25% 25/100"
    assert bar(3, None).endswith("] 3 offsets")
