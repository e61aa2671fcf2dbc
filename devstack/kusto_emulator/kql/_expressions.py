"""Scalar expressions -> DuckDB SQL with their Kusto result type.

String semantics follow Kusto: ``==``, ``in`` and the ``_cs`` operators are case-sensitive;
``=~``, ``has``, ``contains``, ``startswith``, ``endswith`` and ``in~`` are not. ``has`` looks
for whole terms; this emulator approximates Kusto's term index with a regular expression
that requires a non-alphanumeric character (or the string's edge) on both sides of the match.
"""

import json
from collections.abc import Callable

from . import _ast as ast
from ._aggregates import AGGREGATES, ARG_EXTREMES
from ._convert import to_string, unwrap_dynamic
from ._errors import KqlError
from ._functions import FUNCTIONS
from ._scope import Scope
from ._sql import Sql, cast, literal, quote_string
from ._types import is_numeric, wider_numeric

_COMPARISONS = {"==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_TERM_EDGE = "[^[:alnum:]]"


def compile_expr(expr: ast.Expr, scope: Scope) -> Sql:
    if isinstance(expr, ast.Literal):
        return literal(expr.kusto_type, expr.value)
    if isinstance(expr, ast.Name):
        return _name(expr, scope)
    if isinstance(expr, ast.Member):
        return _member(expr, scope)
    if isinstance(expr, ast.Call):
        return _call(expr, scope)
    if isinstance(expr, ast.Unary):
        return _unary(expr, scope)
    if isinstance(expr, ast.Binary):
        return _binary(expr, scope)
    if isinstance(expr, ast.InList):
        return _in_list(expr, scope)
    return _between(expr, scope)


def compile_predicate(expr: ast.Expr, scope: Scope, operator: str) -> Sql:
    predicate = unwrap_dynamic(compile_expr(expr, scope), "bool")
    if predicate.kusto_type != "bool":
        raise KqlError(
            f"'{operator}' needs a bool predicate, got {predicate.kusto_type}",
            ast.start_of(expr),
        )
    return predicate


def _name(expr: ast.Name, scope: Scope) -> Sql:
    if expr.name in scope.columns:
        return scope.columns[expr.name]
    bound = scope.lets.get(expr.name)
    if bound is not None and not isinstance(bound, ast.Pipeline):
        # Without its own binding, so that "let x = x + 1" cannot recurse forever.
        return compile_expr(bound, scope.for_scalars().without_let(expr.name))
    raise KqlError(f"unknown column or name '{expr.name}'", expr.position)


def _member(expr: ast.Member, scope: Scope) -> Sql:
    target = compile_expr(expr.target, scope)
    if target.kusto_type != "dynamic":
        raise KqlError(
            f"property access needs a dynamic value, got {target.kusto_type}", expr.position
        )
    key = expr.key
    if isinstance(key, ast.Literal) and key.kusto_type == "string":
        escaped = str(key.value).replace("\\", "\\\\").replace('"', '\\"')
        path = quote_string(f'$."{escaped}"')
    elif isinstance(key, ast.Literal) and key.kusto_type == "long" and isinstance(key.value, int):
        index = key.value
        path = quote_string(f"$[{index}]" if index >= 0 else f"$[#{index}]")
    else:
        key_sql = compile_expr(key, scope)
        if key_sql.kusto_type == "string":
            escaped_key = f"replace(replace({key_sql.text}, '\\', '\\\\'), '\"', '\\\"')"
            path = f"('$.\"' || {escaped_key} || '\"')"
        elif key_sql.kusto_type in ("int", "long"):
            path = f"('$[' || {key_sql.text} || ']')"
        else:
            raise KqlError(f"invalid index of type {key_sql.kusto_type}", expr.position)
    return Sql(f"json_extract({target.text}, {path})", "dynamic")


def _call(expr: ast.Call, scope: Scope) -> Sql:
    if expr.name in ARG_EXTREMES:
        raise KqlError(f"{expr.name}() must be a summarize aggregation of its own", expr.position)
    aggregate = AGGREGATES.get(expr.name)
    if aggregate is not None:
        if not scope.aggregates_allowed:
            raise KqlError(
                f"aggregate function '{expr.name}' is only allowed in summarize", expr.position
            )
        wanted = aggregate.value_args + (1 if aggregate.takes_predicate else 0)
        _check_arity(expr, wanted, wanted + aggregate.ignored_args)
        inner = scope.for_scalars()
        values = [compile_expr(arg, inner) for arg in expr.args[: aggregate.value_args]]
        conditions = [
            compile_predicate(arg, inner, expr.name).text
            for arg in expr.args[aggregate.value_args : wanted]
        ]
        return _at(expr, lambda: aggregate.compile(values, conditions))
    function = FUNCTIONS.get(expr.name)
    if function is None:
        raise KqlError(f"unsupported KQL function '{expr.name}'", expr.position)
    _check_arity(expr, function.min_args, function.max_args)
    args = [compile_expr(arg, scope) for arg in expr.args]
    return _at(expr, lambda: function.compile(args, scope))


def _check_arity(expr: ast.Call, least: int, most: int | None) -> None:
    count = len(expr.args)
    if count < least or (most is not None and count > most):
        if most is None:
            expected = f"at least {least}"
        else:
            expected = str(least) if least == most else f"{least} to {most}"
        raise KqlError(
            f"function '{expr.name}' expects {expected} argument(s), got {count}", expr.position
        )


def _at(expr: ast.Call, build: Callable[[], Sql]) -> Sql:
    """Runs a function compiler, giving its position-less errors the call's position."""
    try:
        return build()
    except KqlError as error:
        if error.position is not None:
            raise
        raise KqlError(f"{expr.name}(): {error}", expr.position) from None


def _unary(expr: ast.Unary, scope: Scope) -> Sql:
    operand = unwrap_dynamic(compile_expr(expr.operand, scope), "real")
    if not (is_numeric(operand.kusto_type) or operand.kusto_type == "timespan"):
        raise KqlError(f"unary '{expr.op}' needs a number, got {operand.kusto_type}", expr.position)
    return operand if expr.op == "+" else Sql(f"(-{operand.text})", operand.kusto_type)


def _binary(expr: ast.Binary, scope: Scope) -> Sql:
    left, right = compile_expr(expr.left, scope), compile_expr(expr.right, scope)
    op = expr.op
    if op in ("and", "or"):
        return _logical(op, left, right, expr.position)
    if op in _ARITHMETIC:
        return _arithmetic(op, left, right, expr.position)
    if op in _COMPARISONS:
        left = unwrap_dynamic(left, right.kusto_type)
        right = unwrap_dynamic(right, left.kusto_type)
        return Sql(f"({left.text} {_COMPARISONS[op]} {right.text})", "bool")
    if op in ("=~", "!~"):
        sql_op = "=" if op == "=~" else "<>"
        return Sql(f"(lower({_text(left)}) {sql_op} lower({_text(right)}))", "bool")
    if op == "matches regex":
        return Sql(f"regexp_matches({_text(left)}, {_text(right)})", "bool")
    return _string_operator(op, left, right)


def _logical(op: str, left: Sql, right: Sql, position: int) -> Sql:
    left, right = unwrap_dynamic(left, "bool"), unwrap_dynamic(right, "bool")
    if left.kusto_type != "bool" or right.kusto_type != "bool":
        raise KqlError(
            f"'{op}' needs bool operands, got {left.kusto_type} and {right.kusto_type}", position
        )
    return Sql(f"({left.text} {op.upper()} {right.text})", "bool")


def _arithmetic(op: str, left: Sql, right: Sql, position: int) -> Sql:
    left, right = unwrap_dynamic(left, "real"), unwrap_dynamic(right, "real")
    types = (left.kusto_type, right.kusto_type)
    result = _arithmetic_type(op, *types)
    if result is None:
        raise KqlError(f"operator '{op}' is not defined for {types[0]} and {types[1]}", position)
    if types == ("timespan", "timespan") and op == "/":
        return Sql(f"(epoch_us({left.text}) / epoch_us({right.text}))", "real")
    # Kusto divides integers as integers (truncating); DuckDB's "/" would give a double.
    sql_op = "//" if op == "/" and result in ("int", "long") else op
    text = f"({left.text} {sql_op} {right.text})"
    return Sql(cast(text, "decimal") if result == "decimal" else text, result)


def _arithmetic_type(op: str, left: str, right: str) -> str | None:
    if is_numeric(left) and is_numeric(right):
        return wider_numeric(left, right)
    if op == "%":
        return None
    pair = (left, right)
    if op == "-" and pair == ("datetime", "datetime"):
        return "timespan"
    if op in ("+", "-") and pair == ("datetime", "timespan"):
        return "datetime"
    if op == "+" and pair == ("timespan", "datetime"):
        return "datetime"
    if op in ("+", "-") and pair == ("timespan", "timespan"):
        return "timespan"
    if op == "/" and pair == ("timespan", "timespan"):
        return "real"
    if op in ("*", "/") and left == "timespan" and is_numeric(right):
        return "timespan"
    if op == "*" and is_numeric(left) and right == "timespan":
        return "timespan"
    return None


def _text(value: Sql) -> str:
    """A string operand; Kusto has no null strings, so null reads as ''."""
    if value.kusto_type == "string":
        return f"coalesce({value.text}, '')"
    return to_string(value).text


def _string_operator(op: str, left: Sql, right: Sql) -> Sql:
    negated = op.startswith("!")
    word = op.removeprefix("!")
    case_sensitive = word.endswith("_cs")
    word = word.removesuffix("_cs")
    haystack, needle = _text(left), _text(right)
    if word in ("has", "hasprefix", "hassuffix"):
        test = _has(haystack, needle, word, case_sensitive)
    else:
        sql_function = {"contains": "contains", "startswith": "starts_with"}.get(word, "ends_with")
        if not case_sensitive:
            haystack, needle = f"lower({haystack})", f"lower({needle})"
        test = f"{sql_function}({haystack}, {needle})"
    return Sql(f"(NOT {test})" if negated else test, "bool")


def _has(haystack: str, needle: str, word: str, case_sensitive: bool) -> str:
    before = f"'(^|{_TERM_EDGE})' || " if word != "hassuffix" else ""
    after = f" || '($|{_TERM_EDGE})'" if word != "hasprefix" else ""
    flags = "" if case_sensitive else ", 'i'"
    return f"regexp_matches({haystack}, {before}regexp_escape({needle}){after}{flags})"


def _in_list(expr: ast.InList, scope: Scope) -> Sql:
    items = [compile_expr(item, scope) for item in _expand_arrays(expr.items, scope)]
    operand = compile_expr(expr.operand, scope)
    if expr.op in ("has_any", "has_all"):
        tests = [_has(_text(operand), _text(item), "has", False) for item in items]
        joiner = " OR " if expr.op == "has_any" else " AND "
        empty = "FALSE" if expr.op == "has_any" else "TRUE"
        return Sql(f"({joiner.join(tests)})" if tests else empty, "bool")
    negated = expr.op.startswith("!")
    if items:
        operand = unwrap_dynamic(operand, items[0].kusto_type)
    if expr.op.endswith("~"):
        left, rights = f"lower({_text(operand)})", [f"lower({_text(item)})" for item in items]
    else:
        rights = [unwrap_dynamic(item, operand.kusto_type).text for item in items]
        left = operand.text
    if not rights:  # x in () is false; x !in () is true
        return Sql("TRUE" if negated else "FALSE", "bool")
    keyword = "NOT IN" if negated else "IN"
    return Sql(f"({left} {keyword} ({', '.join(rights)}))", "bool")


def _expand_arrays(items: list[ast.Expr], scope: Scope) -> list[ast.Expr]:
    """``x in (dynamic([1, 2]))`` and ``let ids = dynamic([...]); ... in (ids)`` list values."""
    expanded: list[ast.Expr] = []
    for item in items:
        value = item
        if isinstance(item, ast.Name) and item.name not in scope.columns:
            bound = scope.lets.get(item.name)
            value = bound if isinstance(bound, ast.Literal) else item
        if isinstance(value, ast.Literal) and value.kusto_type == "dynamic" and value.value:
            array = json.loads(str(value.value))
            if isinstance(array, list):
                expanded.extend(_scalar_literal(element, item.position) for element in array)
                continue
        expanded.append(item)
    return expanded


def _scalar_literal(value: object, position: int) -> ast.Literal:
    if isinstance(value, bool):
        return ast.Literal("bool", value, position)
    if isinstance(value, int):
        return ast.Literal("long", value, position)
    if isinstance(value, float):
        return ast.Literal("real", value, position)
    if isinstance(value, str):
        return ast.Literal("string", value, position)
    raise KqlError("'in' lists may hold only scalar values", position)


def _between(expr: ast.Between, scope: Scope) -> Sql:
    low, high = compile_expr(expr.low, scope), compile_expr(expr.high, scope)
    operand = unwrap_dynamic(compile_expr(expr.operand, scope), low.kusto_type)
    if low.kusto_type == "datetime" and high.kusto_type == "timespan":
        high = Sql(f"({low.text} + {high.text})", "datetime")  # (start .. duration)
    keyword = "NOT BETWEEN" if expr.negated else "BETWEEN"
    return Sql(f"({operand.text} {keyword} {low.text} AND {high.text})", "bool")
