"""Kusto aggregation functions for ``summarize``, with Kusto's result types and default names.

Every ``xif(..., predicate)`` variant is its base aggregate with a SQL ``FILTER`` clause.
``dcount`` is exact here (Kusto estimates it with HyperLogLog).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from ._convert import unwrap_dynamic
from ._errors import KqlError
from ._sql import Sql, cast
from ._types import is_numeric

# (value arguments, filter conditions) -> aggregate SQL
_Compile = Callable[[list[Sql], list[str]], Sql]


@dataclass(frozen=True)
class Aggregate:
    value_args: int  # arguments before the optional predicate of an "if" variant
    compile: _Compile
    name_prefix: str  # default result column: prefix + the argument's column name
    takes_predicate: bool = False
    # Trailing tuning arguments accepted and ignored: dcount's accuracy, make_set's max size.
    ignored_args: int = 0


def _filter(conditions: list[str]) -> str:
    return f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""


def _numeric(value: Sql) -> Sql:
    value = unwrap_dynamic(value, "real")
    if not is_numeric(value.kusto_type):
        raise KqlError(f"expected a numeric argument, got {value.kusto_type}")
    return value


def _count(args: list[Sql], conditions: list[str]) -> Sql:
    return Sql(f"COUNT(*){_filter(conditions)}", "long")


def _dcount(args: list[Sql], conditions: list[str]) -> Sql:
    return Sql(f"COUNT(DISTINCT {args[0].text}){_filter(conditions)}", "long")


def _sum(args: list[Sql], conditions: list[str]) -> Sql:
    value = _numeric(args[0])
    # DuckDB sums BIGINT into HUGEINT; Kusto's sum of int or long is a long.
    result_type = "long" if value.kusto_type in ("int", "long") else value.kusto_type
    return Sql(cast(f"sum({value.text}){_filter(conditions)}", result_type), result_type)


def _avg(args: list[Sql], conditions: list[str]) -> Sql:
    value = _numeric(args[0])
    return Sql(cast(f"avg({value.text}){_filter(conditions)}", "real"), "real")


def _extreme(function: str) -> _Compile:
    def compile_extreme(args: list[Sql], conditions: list[str]) -> Sql:
        return Sql(f"{function}({args[0].text}){_filter(conditions)}", args[0].kusto_type)

    return compile_extreme


def _statistic(function: str) -> _Compile:
    def compile_statistic(args: list[Sql], conditions: list[str]) -> Sql:
        value = _numeric(args[0])
        return Sql(cast(f"{function}({value.text}){_filter(conditions)}", "real"), "real")

    return compile_statistic


def _percentile(args: list[Sql], conditions: list[str]) -> Sql:
    """Nearest-rank percentile, as Kusto's: always one of the values, never interpolated."""
    value, percent = _numeric(args[0]), args[1]
    text = f"quantile_disc({value.text}, {percent.text} / 100.0){_filter(conditions)}"
    return Sql(text, value.kusto_type)


def _collect(distinct: bool) -> _Compile:
    """make_set / make_list: a dynamic array without nulls, [] when there is nothing."""

    def compile_collect(args: list[Sql], conditions: list[str]) -> Sql:
        value = args[0].text
        keyword = "DISTINCT " if distinct else ""
        clause = _filter([f"{value} IS NOT NULL", *conditions])
        return Sql(f"coalesce(to_json(list({keyword}{value}){clause}), '[]')", "dynamic")

    return compile_collect


def _build() -> dict[str, Aggregate]:
    bases = {
        "count": Aggregate(0, _count, "count_"),
        "dcount": Aggregate(1, _dcount, "dcount_", ignored_args=1),
        "sum": Aggregate(1, _sum, "sum_"),
        "avg": Aggregate(1, _avg, "avg_"),
        "min": Aggregate(1, _extreme("min"), "min_"),
        "max": Aggregate(1, _extreme("max"), "max_"),
        "take_any": Aggregate(1, _extreme("any_value"), "any_"),
        "any": Aggregate(1, _extreme("any_value"), "any_"),
        "stdev": Aggregate(1, _statistic("stddev_samp"), "stdev_"),
        "variance": Aggregate(1, _statistic("var_samp"), "variance_"),
        "percentile": Aggregate(2, _percentile, "percentile_"),
        "make_set": Aggregate(1, _collect(distinct=True), "set_", ignored_args=1),
        "make_list": Aggregate(1, _collect(distinct=False), "list_", ignored_args=1),
    }
    variants = {
        "countif": "count",
        "dcountif": "dcount",
        "sumif": "sum",
        "avgif": "avg",
        "minif": "min",
        "maxif": "max",
        "make_set_if": "make_set",
        "make_list_if": "make_list",
    }
    for name, base in variants.items():
        aggregate = bases[base]
        bases[name] = replace(aggregate, name_prefix=f"{name}_", takes_predicate=True)
    return bases


AGGREGATES = _build()

# Summarize items that yield several columns (the key and the values of its row), compiled by
# the summarize operator itself; each maps to the SQL aggregate of the key.
ARG_EXTREMES = {"arg_max": "max", "arg_min": "min"}
