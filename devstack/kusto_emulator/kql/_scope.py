"""What an expression can see: the columns of its input, hidden columns, let bindings."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from . import _ast as ast
from ._sql import Sql

# Storage columns every table row has; never part of a result.
EXTENT_ID = "__extent_id"
INGESTION_TIME = "__ingestion_time"
# Added by a join with the extents table, only when the query calls extent_tags().
EXTENT_TAGS = "__extent_tags"


@dataclass(frozen=True)
class Scope:
    columns: Mapping[str, Sql]  # visible column name -> SQL reading it
    hidden: frozenset[str]  # hidden storage columns still available
    lets: Mapping[str, ast.Expr | ast.Pipeline]
    now: datetime  # one value for the whole query, as Kusto's now()
    aggregates_allowed: bool = False

    def for_aggregates(self) -> "Scope":
        return replace(self, aggregates_allowed=True)

    def for_scalars(self) -> "Scope":
        return replace(self, aggregates_allowed=False)

    def with_column(self, name: str, value: Sql) -> "Scope":
        return replace(self, columns={**self.columns, name: value})

    def without_let(self, name: str) -> "Scope":
        return replace(self, lets={key: value for key, value in self.lets.items() if key != name})
