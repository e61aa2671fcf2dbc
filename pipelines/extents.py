"""The sink's extents in Kusto: which batches a table holds, with their rows; dropping them.

Every tagged batch lands as extents tagged ``ingest-by:<batch id>`` and ``drop-by:<batch
id>`` (see :mod:`pipelines.ingest`). Delivery reads them to resume after what a table
holds and to confirm batches; backfills to skip offsets a table already holds and to drop
a range before loading it again (``--replace``); the reconciliation check reads their row
counts. This module is the one place that asks for them and parses their tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from azure.kusto.data import ClientRequestProperties, KustoClient

from pipelines.kusto_errors import kusto_errors

# `ingest-by:orders/2/1000-1999` or, when a topic feeds several tables, `...-1999@db.T`
# (table names may hold spaces: everything after the `@` is the suffix).
_INGEST_TAG = re.compile(
    r"^ingest-by:(?P<id>(?P<topic>[^/]+)/(?P<partition>\d+)/(?P<first>\d+)-(?P<last>\d+)(@.+)?)$"
)


@dataclass(frozen=True)
class BatchExtent:
    """One extent of one batch: a batch normally lands as one extent, on ADX maybe more."""

    extent_id: str
    batch_id: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    rows: int


def batch_extents(
    query: KustoClient,
    database: str,
    table: str,
    topic: str,
    partition: int | None = None,
    *,
    properties: ClientRequestProperties | None = None,
) -> list[BatchExtent]:
    """The extents of ``table`` that hold batches of ``topic`` (of one partition if given)."""
    prefix = f"ingest-by:{topic}/" + ("" if partition is None else f"{partition}/")
    escaped = prefix.replace("\\", "\\\\").replace("'", "\\'")
    command = f".show table ['{table}'] extents where tags contains '{escaped}'"
    with kusto_errors(f"listing extents of {database}.{table}"):
        response = query.execute_mgmt(database, command, properties)
    found = []
    for row in response.primary_results[0]:
        for tag in str(row["Tags"] or "").split("\r\n"):
            match = _INGEST_TAG.match(tag)
            if match is None or not tag.startswith(prefix):
                continue
            found.append(
                BatchExtent(
                    extent_id=str(row["ExtentId"]),
                    batch_id=match["id"],
                    topic=match["topic"],
                    partition=int(match["partition"]),
                    first_offset=int(match["first"]),
                    last_offset=int(match["last"]),
                    rows=int(row["RowCount"] or 0),
                )
            )
    return found


def drop_extents(
    query: KustoClient, database: str, table: str, extents: Iterable[BatchExtent]
) -> int:
    """Drop ``extents`` from ``table``; returns how many Kusto dropped."""
    ids = sorted({extent.extent_id for extent in extents})
    if not ids:
        return 0
    command = f".drop extents ({', '.join(ids)}) from ['{table}']"
    with kusto_errors(f"dropping {len(ids)} extent(s) of {database}.{table}"):
        response = query.execute_mgmt(database, command)
    return len(response.primary_results[0].rows)
