"""KQL subset compiler of the Kusto emulator: one KQL query -> one DuckDB SQL query.

    compiled = compile_query("Events | where n > 1 | count", catalog)
    rows = connection.execute(compiled.sql).fetchall()   # compiled.columns: [("Count", "long")]

Storage convention: table ``T`` of database ``D`` is ``"D"."T"``, holding the user columns
plus hidden ``__extent_id`` and ``__ingestion_time``; ``"D"."__extents"`` lists the extents
with their tags. Results never show the hidden columns.

Supported KQL:

- sources: a table (``T`` or ``['T']``), ``print``, ``let`` (scalar values, dynamic arrays,
  tabular expressions); ``//`` comments.
- operators: where/filter, project, project-away, project-keep, project-reorder,
  project-rename, extend, take/limit, top, sort/order (desc by default; nulls last when
  descending, first when ascending), summarize (``by`` columns first), distinct, count,
  getschema.
- predicates: == != < <= > >= =~ !~, and/or/not(), has, hasprefix, hassuffix, contains,
  startswith, endswith (each also negated ``!`` and case-sensitive ``_cs``), matches regex,
  in, !in, in~, !in~, has_any, has_all, between, !between, isnull, isnotnull, isempty,
  isnotempty.
- literals: strings ('..', "..", escapes, @verbatim), long and real numbers, true/false,
  datetime(...), timespans (1d, 2h, 30m, 10s, 100ms, timespan(1.02:03:04)), guid(...),
  dynamic(...), typed nulls such as long(null).
- scalar functions: see ``_functions.FUNCTIONS`` (now, ago, bin, iff, case, coalesce,
  conversions, string, date and math functions, ingestion_time, extent_id, extent_tags).
- aggregations: see ``_aggregates.AGGREGATES`` (count, countif, dcount, sum, avg, min, max,
  make_set, make_list, percentile, ... and their ``if`` variants) plus arg_max/arg_min.

Result types and default column names follow Kusto (``count_``, ``sum_x``, ``Column1``,
``print_0``). Anything else raises ``KqlError`` naming it and its 0-based position.
Known approximations: ``has`` matches terms with a regular expression, not a term index;
``dcount`` is exact; datetimes and timespans have microsecond, not 100 ns, resolution.
"""

from ._compiler import Catalog, CompiledQuery, compile_query
from ._errors import KqlError

__all__ = ["Catalog", "CompiledQuery", "KqlError", "compile_query"]
