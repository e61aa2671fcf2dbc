"""KQL subset compiler of the Kusto emulator: one KQL query -> one DuckDB SQL query.

Storage convention: table ``T`` of database ``D`` is ``"D"."T"``, holding the user columns
plus hidden ``__extent_id`` and ``__ingestion_time``; ``"D"."__extents"`` lists the extents
with their tags. Supported KQL: tabular sources (a table, ``print``, ``let``), the operators
where, project, project-away, project-rename, extend, take/limit, top, sort/order, summarize,
distinct and count, and the scalar functions listed in ``_functions`` and ``_aggregates``.
Anything else raises ``KqlError`` naming it and its position.
"""

from ._compiler import Catalog, CompiledQuery, compile_query
from ._errors import KqlError

__all__ = ["Catalog", "CompiledQuery", "KqlError", "compile_query"]
