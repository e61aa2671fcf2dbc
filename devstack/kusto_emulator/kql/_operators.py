"""Tabular operators: each pipe stage wraps the previous one, ``SELECT ... FROM (prev) AS sN``.

A relation carries hidden columns next to the visible ones: the storage columns behind
``ingestion_time()``, ``extent_id()`` and ``extent_tags()``, and the keys of the last
``sort``/``top``. Row-preserving operators (where, extend, project, ...) pass them on;
operators that build new rows (summarize, distinct, count) drop them. SQL does not promise
that a subquery's order survives the query around it, so a sort only records its keys, and
the ``ORDER BY`` is written where order matters: with a ``LIMIT`` (take, top) and in the
final SELECT. One sort of the data, and ``sort | take`` is a top-N.

Computed columns get internal SQL names (``__c1``, ``__c2``, ...) and take their Kusto names
only in the final SELECT: DuckDB binds names case-insensitively, Kusto does not, so ``name``
and ``Name`` must never meet inside the SQL.
"""

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from devstack.kusto_emulator.kusto_types import CLR_TYPES

from . import _ast as ast
from ._aggregates import ARG_EXTREMES
from ._errors import KqlError
from ._expressions import compile_expr, compile_predicate
from ._names import ColumnNamer, aggregate_name, contains_aggregate, derived_name
from ._scope import EXTENT_ID, EXTENT_TAGS, INGESTION_TIME, Scope
from ._sql import Sql, quote_identifier, quote_string

_STORAGE_COLUMNS = frozenset({EXTENT_ID, INGESTION_TIME, EXTENT_TAGS})


@dataclass(frozen=True)
class Column:
    name: str  # the Kusto name
    kusto_type: str
    sql_name: str  # its name in the relation's SQL


@dataclass(frozen=True)
class Relation:
    sql: str  # a SELECT statement
    columns: list[Column]  # the visible columns, in order
    hidden: tuple[str, ...] = ()  # SQL-only columns carried along
    order: tuple[str, ...] = ()  # ORDER BY terms in force, over hidden sort keys

    @property
    def schema(self) -> list[tuple[str, str]]:
        return [(column.name, column.kusto_type) for column in self.columns]

    def with_columns(self, columns: list[Column]) -> "Relation":
        """The same rows showing other columns: project-away, -keep, -reorder, -rename."""
        return Relation(self.sql, columns, self.hidden, self.order)


def _order_clause(order: tuple[str, ...]) -> str:
    return f" ORDER BY {', '.join(order)}" if order else ""


class Stages:
    """Compiles operators one by one; numbers aliases and sort keys uniquely per query."""

    def __init__(self, lets: Mapping[str, ast.Expr | ast.Pipeline], now: datetime) -> None:
        self._lets = lets
        self._now = now
        self._subqueries = 0
        self._sql_names = 0

    def scope(self, relation: Relation | None) -> Scope:
        """What expressions over ``relation`` (None: no input, as in print) can see."""
        if relation is None:
            return Scope({}, frozenset(), self._lets, self._now)
        columns = {
            column.name: Sql(quote_identifier(column.sql_name), column.kusto_type)
            for column in relation.columns
        }
        hidden = frozenset(relation.hidden) & _STORAGE_COLUMNS
        return Scope(columns, hidden, self._lets, self._now)

    def print(self, source: ast.Print) -> Relation:
        """``print a = 1, 2``: one row; unnamed values are print_<index>."""
        scope = self.scope(None)
        items: list[str] = []
        columns: list[Column] = []
        for index, item in enumerate(source.items):
            value = compile_expr(item.expr, scope)
            column = self._column(item.name or f"print_{index}", value.kusto_type)
            items.append(f"{value.text} AS {quote_identifier(column.sql_name)}")
            columns.append(column)
        return Relation(f"SELECT {', '.join(items)}", columns)

    def _column(self, name: str, kusto_type: str) -> Column:
        self._sql_names += 1
        return Column(name, kusto_type, f"__c{self._sql_names}")

    def _named_values(
        self,
        assignments: list[ast.Assignment],
        scope: Scope,
        default_name: Callable[[ast.Expr], str | None],
        namer: ColumnNamer,
    ) -> tuple[list[str], list[Column]]:
        """``name = expr`` items -> SELECT items and result columns, with Kusto's default names."""
        items: list[str] = []
        columns: list[Column] = []
        for item in assignments:
            value = compile_expr(item.expr, scope)
            column = self._column(namer.name(item.name, default_name(item.expr)), value.kusto_type)
            items.append(f"{value.text} AS {quote_identifier(column.sql_name)}")
            columns.append(column)
        return items, columns

    def _arg_extreme(
        self,
        item: ast.Assignment,
        scope: Scope,
        relation: Relation,
        by_names: list[str],
        namer: ColumnNamer,
    ) -> tuple[list[str], list[Column]]:
        """``arg_max(key, a, b)`` / ``arg_max(key, *)``: the key's extreme and the other values
        of the row that holds it, one result column each (``*``: every input column not
        grouped by).
        """
        call = item.expr
        assert isinstance(call, ast.Call)
        if len(call.args) < 2:
            raise KqlError(f"{call.name}() needs a key and the values to return", call.position)
        key = compile_expr(call.args[0], scope)
        key_column = self._column(namer.name(item.name, derived_name(call.args[0])), key.kusto_type)
        extreme = ARG_EXTREMES[call.name]
        items = [f"{extreme}({key.text}) AS {quote_identifier(key_column.sql_name)}"]
        columns = [key_column]
        returned: list[ast.Expr] = []
        for arg in call.args[1:]:
            if isinstance(arg, ast.Name) and arg.name == "*":
                returned += [
                    ast.Name(column.name, arg.position)
                    for column in relation.columns
                    if column.name not in by_names and column.name != key_column.name
                ]
            else:
                returned.append(arg)
        for expr in returned:
            value = compile_expr(expr, scope)
            column = self._column(namer.name(None, derived_name(expr)), value.kusto_type)
            # arg_max_null keeps a null value of the winning row; arg_max would skip that row.
            items.append(
                f"{call.name}_null({value.text}, {key.text}) AS {quote_identifier(column.sql_name)}"
            )
            columns.append(column)
        return items, columns

    def apply(self, relation: Relation, operator: ast.Operator) -> Relation:
        match operator:
            case ast.Where():
                return self._where(relation, operator)
            case ast.Project():
                return self._project(relation, operator)
            case ast.ProjectColumns():
                return self._project_columns(relation, operator)
            case ast.ProjectRename():
                return self._project_rename(relation, operator)
            case ast.Extend():
                return self._extend(relation, operator)
            case ast.Take():
                return self._take(relation, operator)
            case ast.Top():
                return self._top(relation, operator)
            case ast.Sort():
                return self._sort(relation, operator)
            case ast.Summarize():
                return self._summarize(relation, operator)
            case ast.Distinct():
                return self._distinct(relation, operator)
            case ast.Count():
                return self._count(relation)
            case ast.GetSchema():
                return self._getschema(relation)

    def finish(self, relation: Relation) -> str:
        """The final SELECT: the visible columns under their Kusto names, in sort order."""
        visible = [
            f"{quote_identifier(column.sql_name)} AS {quote_identifier(column.name)}"
            for column in relation.columns
        ]
        return self._select(relation, visible, _order_clause(relation.order))

    def _select(self, relation: Relation, items: list[str], tail: str = "") -> str:
        self._subqueries += 1
        return f"SELECT {', '.join(items)} FROM ({relation.sql}) AS s{self._subqueries}{tail}"

    def _carry(self, relation: Relation, items: list[str], columns: list[Column]) -> Relation:
        """A row-preserving stage: ``items`` plus every hidden column, order kept."""
        hidden = [quote_identifier(name) for name in relation.hidden]
        sql = self._select(relation, [*items, *hidden])
        return Relation(sql, columns, relation.hidden, relation.order)

    # ------------------------------------------------------------ row-preserving

    def _where(self, relation: Relation, operator: ast.Where) -> Relation:
        predicate = compile_predicate(operator.predicate, self.scope(relation), "where")
        tail = f" WHERE {predicate.text}"
        return Relation(
            self._select(relation, ["*"], tail), relation.columns, relation.hidden, relation.order
        )

    def _extend(self, relation: Relation, operator: ast.Extend) -> Relation:
        scope = self.scope(relation)
        columns = list(relation.columns)
        namer = ColumnNamer([column.name for column in columns])
        items = [quote_identifier(column.sql_name) for column in columns]
        for item in operator.items:
            value = compile_expr(item.expr, scope)
            replaced = next(
                (index for index, column in enumerate(columns) if column.name == item.name), None
            )
            if replaced is not None:  # Kusto removes the old column and appends the new one
                del columns[replaced], items[replaced]
                column = self._column(str(item.name), value.kusto_type)
            else:
                column = self._column(
                    namer.name(item.name, derived_name(item.expr)), value.kusto_type
                )
            columns.append(column)
            items.append(f"{value.text} AS {quote_identifier(column.sql_name)}")
            # Later items may use this one; SQL cannot refer to a sibling alias, so inline it.
            scope = scope.with_column(column.name, Sql(f"({value.text})", value.kusto_type))
        return self._carry(relation, items, columns)

    def _project(self, relation: Relation, operator: ast.Project) -> Relation:
        items, columns = self._named_values(
            operator.items, self.scope(relation), derived_name, ColumnNamer()
        )
        return self._carry(relation, items, columns)

    def _project_columns(self, relation: Relation, operator: ast.ProjectColumns) -> Relation:
        names = [column.name for column in relation.columns]
        matched: list[str] = []  # in the order the patterns name them
        for pattern in operator.patterns:
            found = [name for name in names if fnmatch.fnmatchcase(name, pattern.name)]
            if not found and "*" not in pattern.name:
                raise KqlError(
                    f"project-{operator.mode}: unknown column '{pattern.name}'", pattern.position
                )
            matched += [name for name in found if name not in matched]
        if operator.mode == "away":
            kept = [name for name in names if name not in matched]
        elif operator.mode == "keep":
            kept = [name for name in names if name in matched]
        else:
            kept = matched + [name for name in names if name not in matched]
        if not kept:
            raise KqlError(f"project-{operator.mode} leaves no columns", operator.position)
        by_name = {column.name: column for column in relation.columns}
        return relation.with_columns([by_name[name] for name in kept])

    def _project_rename(self, relation: Relation, operator: ast.ProjectRename) -> Relation:
        new_names: dict[str, str] = {}
        known = {column.name for column in relation.columns}
        for new_name, old in operator.renames:
            if old.name not in known:
                raise KqlError(f"project-rename: unknown column '{old.name}'", old.position)
            new_names[old.name] = new_name
        return relation.with_columns(
            [
                Column(new_names.get(column.name, column.name), column.kusto_type, column.sql_name)
                for column in relation.columns
            ]
        )

    def _take(self, relation: Relation, operator: ast.Take) -> Relation:
        tail = f"{_order_clause(relation.order)} LIMIT {self._row_count(relation, operator.count)}"
        return Relation(
            self._select(relation, ["*"], tail), relation.columns, relation.hidden, relation.order
        )

    def _row_count(self, relation: Relation, expr: ast.Expr) -> str:
        count = compile_expr(expr, self.scope(relation))
        if count.kusto_type not in ("int", "long"):
            raise KqlError(
                f"row count must be an integer, got {count.kusto_type}", ast.start_of(expr)
            )
        return count.text

    def _sort(self, relation: Relation, operator: ast.Sort) -> Relation:
        scope = self.scope(relation)
        keys: list[str] = []
        key_names: list[str] = []
        order: list[str] = []
        for key in operator.keys:
            value = compile_expr(key.expr, scope)
            self._sql_names += 1
            key_names.append(f"__sort_{self._sql_names}")
            keys.append(f"{value.text} AS {quote_identifier(key_names[-1])}")
            direction = "DESC" if key.descending else "ASC"
            nulls = "FIRST" if key.nulls_first else "LAST"
            order.append(f"{quote_identifier(key_names[-1])} {direction} NULLS {nulls}")
        sql = self._select(relation, ["*", *keys])
        return Relation(sql, relation.columns, relation.hidden + tuple(key_names), tuple(order))

    def _top(self, relation: Relation, operator: ast.Top) -> Relation:
        sorted_relation = self._sort(relation, ast.Sort([operator.key], operator.position))
        return self._take(sorted_relation, ast.Take(operator.count, operator.position))

    # ------------------------------------------------------------ new rows

    def _summarize(self, relation: Relation, operator: ast.Summarize) -> Relation:
        scope = self.scope(relation)
        namer = ColumnNamer()
        items, columns = self._named_values(operator.by, scope, derived_name, namer)
        by_names = [column.name for column in columns]
        for item in operator.aggregates:  # Kusto puts the group-by columns first
            if isinstance(item.expr, ast.Call) and item.expr.name in ARG_EXTREMES:
                extreme = self._arg_extreme(item, scope, relation, by_names, namer)
                items, columns = items + extreme[0], columns + extreme[1]
                continue
            if not contains_aggregate(item.expr):
                raise KqlError(
                    "summarize: expected an aggregation function such as count() or sum()",
                    ast.start_of(item.expr),
                )
            value_items, value_columns = self._named_values(
                [item], scope.for_aggregates(), aggregate_name, namer
            )
            items, columns = items + value_items, columns + value_columns
        group_by = ", ".join(str(n) for n in range(1, len(operator.by) + 1))
        tail = f" GROUP BY {group_by}" if operator.by else ""
        return Relation(self._select(relation, items, tail), columns)

    def _distinct(self, relation: Relation, operator: ast.Distinct) -> Relation:
        if not operator.items:
            names = [quote_identifier(column.sql_name) for column in relation.columns]
            return Relation(
                self._select(relation, [f"DISTINCT {', '.join(names)}"]), relation.columns
            )
        items, columns = self._named_values(
            operator.items, self.scope(relation), derived_name, ColumnNamer()
        )
        return Relation(self._select(relation, [f"DISTINCT {', '.join(items)}"]), columns)

    def _count(self, relation: Relation) -> Relation:
        column = self._column("Count", "long")
        sql = self._select(relation, [f"COUNT(*) AS {quote_identifier(column.sql_name)}"])
        return Relation(sql, [column])

    def _getschema(self, relation: Relation) -> Relation:
        """One row per input column, as Kusto's getschema: name, ordinal, .NET and KQL type."""
        rows = ", ".join(
            f"({quote_string(column.name)}, {ordinal}, "
            f"{quote_string(CLR_TYPES[column.kusto_type])}, {quote_string(column.kusto_type)})"
            for ordinal, column in enumerate(relation.columns)
        )
        columns = [
            self._column("ColumnName", "string"),
            self._column("ColumnOrdinal", "int"),
            self._column("DataType", "string"),
            self._column("ColumnType", "string"),
        ]
        names = ", ".join(quote_identifier(column.sql_name) for column in columns)
        return Relation(f"SELECT * FROM (VALUES {rows}) AS schema({names})", columns)
