"""The syntax tree the parser builds and the SQL generator walks.

Every node keeps the character offset where it starts, for error messages.
"""

from dataclasses import dataclass, field

# ---------------------------------------------------------------- scalar expressions


@dataclass(frozen=True)
class Literal:
    kusto_type: str  # string, long, real, bool, datetime, timespan, guid, dynamic, ...
    value: object  # None for a typed null such as long(null)
    position: int


@dataclass(frozen=True)
class Name:
    """A column, or a name bound by ``let``."""

    name: str
    position: int


@dataclass(frozen=True)
class Member:
    """Dynamic property or element access: ``d.a``, ``d['a']``, ``d[0]``."""

    target: "Expr"
    key: "Expr"
    position: int


@dataclass(frozen=True)
class Call:
    name: str
    args: list["Expr"]
    position: int


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: "Expr"
    position: int


@dataclass(frozen=True)
class Binary:
    """Arithmetic, comparison, logic and string operators, ``op`` as written in KQL."""

    op: str
    left: "Expr"
    right: "Expr"
    position: int


@dataclass(frozen=True)
class InList:
    """``x in (...)``; ``op`` is one of in, !in, in~, !in~, has_any, has_all."""

    op: str
    operand: "Expr"
    items: list["Expr"]
    position: int


@dataclass(frozen=True)
class Between:
    operand: "Expr"
    low: "Expr"
    high: "Expr"
    negated: bool
    position: int


Expr = Literal | Name | Member | Call | Unary | Binary | InList | Between


def start_of(expr: Expr) -> int:
    """Where the text of ``expr`` begins (an infix node's own position is its operator's)."""
    if isinstance(expr, Binary):
        return start_of(expr.left)
    if isinstance(expr, InList | Between):
        return start_of(expr.operand)
    if isinstance(expr, Member):
        return start_of(expr.target)
    return expr.position


@dataclass(frozen=True)
class Assignment:
    """``name = expr`` or a bare ``expr`` (name None: the compiler derives one)."""

    name: str | None
    expr: Expr


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool
    nulls_first: bool


# ---------------------------------------------------------------- tabular operators


@dataclass(frozen=True)
class Where:
    predicate: Expr
    position: int


@dataclass(frozen=True)
class Project:
    items: list[Assignment]
    position: int


@dataclass(frozen=True)
class ProjectColumns:
    """project-away, project-keep or project-reorder (``mode``) of column name patterns."""

    mode: str  # "away", "keep", "reorder"
    patterns: list[Name]  # names, possibly with * wildcards
    position: int


@dataclass(frozen=True)
class ProjectRename:
    renames: list[tuple[str, Name]]  # (new name, old column)
    position: int


@dataclass(frozen=True)
class Extend:
    items: list[Assignment]
    position: int


@dataclass(frozen=True)
class Take:
    count: Expr
    position: int


@dataclass(frozen=True)
class Top:
    count: Expr
    key: SortKey
    position: int


@dataclass(frozen=True)
class Sort:
    keys: list[SortKey]
    position: int


@dataclass(frozen=True)
class Summarize:
    aggregates: list[Assignment]
    by: list[Assignment]
    position: int


@dataclass(frozen=True)
class Distinct:
    items: list[Assignment]  # empty for "distinct *"
    position: int


@dataclass(frozen=True)
class Count:
    position: int


@dataclass(frozen=True)
class GetSchema:
    position: int


Operator = (
    (
        Where
        | Project
        | ProjectColumns
        | ProjectRename
        | Extend
        | Take
        | Top
        | Sort
        | Summarize
        | Distinct
    )
    | Count
    | GetSchema
)


@dataclass(frozen=True)
class TableRef:
    name: str
    position: int


@dataclass(frozen=True)
class Print:
    items: list[Assignment]
    position: int


@dataclass(frozen=True)
class Pipeline:
    source: TableRef | Print
    operators: list[Operator] = field(default_factory=list)


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr | Pipeline
    position: int


@dataclass(frozen=True)
class Query:
    lets: list[Let]
    body: Pipeline
