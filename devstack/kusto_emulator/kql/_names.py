"""Kusto's default names for result columns.

- a column reference keeps its name; ``d.a.b`` becomes ``d_a_b``;
- conversions and ``bin`` pass their argument's name through: ``bin(Timestamp, 1h)`` is
  ``Timestamp``, ``tostring(d.a)`` is ``d_a``;
- an aggregation is ``<prefix><argument name>``: ``count_``, ``sum_x``, ``dcount_x``,
  ``percentile_x_95``;
- anything else is ``Column1``, ``Column2``, ... (the first free ones), or ``print_<index>`` in
  print;
- a name already taken gets a number appended: ``x1``, ``x2``.
"""

from . import _ast as ast
from ._aggregates import AGGREGATES

_NAME_PRESERVING = frozenset(
    {
        "bin",
        "floor",
        "tostring",
        "toint",
        "tolong",
        "todouble",
        "toreal",
        "todecimal",
        "todatetime",
        "tobool",
        "toboolean",
        "totimespan",
        "toguid",
        "todynamic",
    }
)


def derived_name(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Member) and isinstance(expr.key, ast.Literal):
        base = derived_name(expr.target)
        return f"{base}_{expr.key.value}" if base else None
    if isinstance(expr, ast.Call) and expr.name in _NAME_PRESERVING and expr.args:
        return derived_name(expr.args[0])
    return None


def aggregate_name(expr: ast.Expr) -> str | None:
    if not isinstance(expr, ast.Call) or expr.name not in AGGREGATES:
        return None
    aggregate = AGGREGATES[expr.name]
    argument = derived_name(expr.args[0]) if aggregate.value_args and expr.args else None
    # Literal parameters join the name: percentile(x, 95) is percentile_x_95.
    parameters = [
        f"_{arg.value}"
        for arg in expr.args[1 : aggregate.value_args]
        if isinstance(arg, ast.Literal)
    ]
    return aggregate.name_prefix + (argument or "") + "".join(parameters)


def contains_aggregate(expr: ast.Expr) -> bool:
    if isinstance(expr, ast.Call):
        return expr.name in AGGREGATES or any(contains_aggregate(arg) for arg in expr.args)
    if isinstance(expr, ast.Binary):
        return contains_aggregate(expr.left) or contains_aggregate(expr.right)
    if isinstance(expr, ast.Unary | ast.Member):
        inner = expr.operand if isinstance(expr, ast.Unary) else expr.target
        return contains_aggregate(inner)
    return False


class ColumnNamer:
    """Hands out the result column names of one operator, unique within its output."""

    def __init__(self, taken: list[str] | None = None) -> None:
        self._taken = set(taken or [])
        self._unnamed = 0

    def name(self, explicit: str | None, derived: str | None) -> str:
        if explicit is not None:
            self._taken.add(explicit)
            return explicit
        if derived is not None:
            return self.unique(derived)
        while True:
            self._unnamed += 1
            candidate = f"Column{self._unnamed}"
            if candidate not in self._taken:
                self._taken.add(candidate)
                return candidate

    def unique(self, name: str) -> str:
        candidate, suffix = name, 0
        while candidate in self._taken:
            suffix += 1
            candidate = f"{name}{suffix}"
        self._taken.add(candidate)
        return candidate
