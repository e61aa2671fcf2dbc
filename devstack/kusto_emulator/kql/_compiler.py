"""Entry point: KQL text + catalog -> one DuckDB SQL query and its Kusto result schema."""

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from . import _ast as ast
from ._errors import KqlError
from ._operators import Column, Relation, Stages
from ._parser import parse
from ._scope import EXTENT_ID, EXTENT_TAGS, INGESTION_TIME
from ._sql import quote_identifier
from ._types import normalize_type


class Catalog(Protocol):
    """The tables of the current database, as the emulator's storage knows them."""

    database: str  # current Kusto database name

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, Kusto type) of the user columns; KeyError if there is no such table."""
        ...


@dataclass(frozen=True)
class CompiledQuery:
    sql: str  # DuckDB SQL
    columns: list[tuple[str, str]]  # output (name, Kusto type) in order


def compile_query(text: str, catalog: Catalog, *, now: datetime | None = None) -> CompiledQuery:
    """Compiles a KQL query into one DuckDB query over the emulator's storage.

    ``now`` fixes the value of ``now()`` and ``ago()`` (default: the current time; a naive
    value is taken as UTC); like Kusto, every ``now()`` in one query has the same value.
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    try:
        query = parse(text)
        lets = {let.name: let.value for let in query.lets}
        compiler = _QueryCompiler(catalog, lets, moment, _calls_extent_tags(query))
        relation = compiler.pipeline(query.body)
    except RecursionError:  # recursive descent over thousands of nested terms
        raise KqlError("query nests too deeply; use 'in (...)' for long lists of values") from None
    return CompiledQuery(compiler.stages.finish(relation), relation.schema)


class _QueryCompiler:
    def __init__(
        self,
        catalog: Catalog,
        lets: Mapping[str, ast.Expr | ast.Pipeline],
        now: datetime,
        with_extent_tags: bool,
    ) -> None:
        self._catalog = catalog
        self._lets = lets
        self._with_extent_tags = with_extent_tags
        self.stages = Stages(lets, now)

    def pipeline(self, pipeline: ast.Pipeline, expanding: frozenset[str] = frozenset()) -> Relation:
        """``expanding``: the lets being expanded, so ``let T = T | ...`` reads table T."""
        if isinstance(pipeline.source, ast.Print):
            relation = self.stages.print(pipeline.source)
        else:
            relation = self._source(pipeline.source.name, pipeline.source.position, expanding)
        for operator in pipeline.operators:
            relation = self.stages.apply(relation, operator)
        return relation

    def _source(self, name: str, position: int, expanding: frozenset[str]) -> Relation:
        """A table, or a let-bound tabular expression (``let T2 = T | where ...;``)."""
        bound = self._lets.get(name)
        if bound is None or name in expanding:
            return self._table(name, position)
        if isinstance(bound, ast.Pipeline):
            return self.pipeline(bound, expanding | {name})
        if isinstance(bound, ast.Name):
            return self._source(bound.name, bound.position, expanding | {name})
        raise KqlError(f"'{name}' is a scalar, not a table", position)

    def _table(self, name: str, position: int) -> Relation:
        database = self._catalog.database
        try:
            stored = self._catalog.columns(name)
        except KeyError:
            raise KqlError(f"unknown table '{name}' in database '{database}'", position) from None
        columns = [(column, normalize_type(kind)) for column, kind in stored]
        # Kusto strings are never null: a missing value is "", which ==, in and strlen see.
        items = [
            f"coalesce(t.{quote_identifier(column)}, '') AS {quote_identifier(column)}"
            if kind == "string"
            else f"t.{quote_identifier(column)}"
            for column, kind in columns
        ]
        hidden = [EXTENT_ID, INGESTION_TIME]
        items += [f"t.{quote_identifier(column)}" for column in hidden]
        source = f"{quote_identifier(database)}.{quote_identifier(name)} AS t"
        if self._with_extent_tags:
            # Tags turn into JSON once per extent, not once per row.
            extents = (
                "(SELECT extent_id, to_json(tags) AS tags"
                f" FROM {quote_identifier(database)}.{quote_identifier('__extents')})"
            )
            source += f" LEFT JOIN {extents} AS e ON e.extent_id = t.{quote_identifier(EXTENT_ID)}"
            items.append(f"coalesce(e.tags, CAST('[]' AS JSON)) AS {quote_identifier(EXTENT_TAGS)}")
            hidden.append(EXTENT_TAGS)
        visible = [Column(column, kind, column) for column, kind in columns]
        return Relation(f"SELECT {', '.join(items)} FROM {source}", visible, tuple(hidden))


def _walk(node: object) -> Iterator[object]:
    yield node
    if isinstance(node, list | tuple):
        for child in node:
            yield from _walk(child)
    elif dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            yield from _walk(getattr(node, field.name))


def _calls_extent_tags(query: ast.Query) -> bool:
    return any(isinstance(node, ast.Call) and node.name == "extent_tags" for node in _walk(query))
