"""Recursive-descent parser: tokens -> ``Query``. Scalar expressions use precedence climbing.

Precedence, loosest first (as in Kusto): ``or``; ``and``; comparisons and string operators
(``==``, ``has``, ``in``, ``between``, ...); ``+ -``; ``* / %``; unary ``-``; member access.
"""

from collections.abc import Callable

from . import _ast as ast
from ._errors import KqlError
from ._lexer import Kind, Token, tokenize
from ._literals import parse_datetime, parse_dynamic, parse_guid, parse_timespan

_COMPARISON_SYMBOLS = frozenset({"==", "!=", "<>", "<", "<=", ">", ">=", "=~", "!~"})
_STRING_OPERATORS = frozenset(
    f"{negation}{word}{suffix}"
    for negation in ("", "!")
    for word in ("has", "contains", "startswith", "endswith", "hasprefix", "hassuffix")
    for suffix in ("", "_cs")
)
_LIST_OPERATORS = frozenset({"in", "!in", "has_any", "has_all"})
_COMPARISON_WORDS = _STRING_OPERATORS | _LIST_OPERATORS | {"between", "!between", "matches"}
_COMPARISON_PRECEDENCE = 3
_INFIX_PRECEDENCE = {"or": 1, "and": 2, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}
_UNARY_PRECEDENCE = 6

# Scalar types whose literal is written type(value): long(1), real(null), bool(true).
_TYPED_SCALARS = {
    "long": "long",
    "int": "int",
    "real": "real",
    "double": "real",
    "decimal": "decimal",
    "bool": "bool",
    "boolean": "bool",
}


def parse(text: str) -> ast.Query:
    return _Parser(tokenize(text)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._operators: dict[str, Callable[[int], ast.Operator]] = {
            "where": self._where,
            "filter": self._where,
            "project": self._project,
            "project-away": lambda position: self._project_columns("away", position),
            "project-keep": lambda position: self._project_columns("keep", position),
            "project-reorder": lambda position: self._project_columns("reorder", position),
            "project-rename": self._project_rename,
            "extend": self._extend,
            "take": self._take,
            "limit": self._take,
            "top": self._top,
            "order": self._sort,
            "sort": self._sort,
            "summarize": self._summarize,
            "distinct": self._distinct,
            "count": ast.Count,
            "getschema": ast.GetSchema,
        }

    # ------------------------------------------------------------ token helpers

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _at(self, text: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.kind in (Kind.SYMBOL, Kind.IDENT) and token.text == text

    def _accept(self, text: str) -> bool:
        if self._at(text):
            self._advance()
            return True
        return False

    def _expect(self, text: str) -> Token:
        if not self._at(text):
            raise self._unexpected(f"'{text}'")
        return self._advance()

    def _unexpected(self, wanted: str) -> KqlError:
        token = self._peek()
        found = token.kind.value if token.kind is Kind.END else repr(token.text)
        return KqlError(f"expected {wanted}, found {found}", token.position)

    def _identifier(self) -> Token:
        """A plain name, or a bracketed one such as ``['my column']``."""
        if self._peek().kind is Kind.IDENT:
            return self._advance()
        if self._at("[") and self._peek(1).kind is Kind.STRING and self._at("]", 2):
            start = self._advance().position
            name = self._advance()
            self._advance()
            return Token(Kind.IDENT, str(name.value), start)
        raise self._unexpected("a name")

    def _adjacent(self, ahead: int) -> bool:
        """True if token ``ahead`` starts right where the one before it ends (``in~``)."""
        before, token = self._peek(ahead - 1), self._peek(ahead)
        return before.position + len(before.text) == token.position

    def _hyphenated_word(self) -> Token:
        """``project-away`` and ``mv-expand`` are single operator names."""
        first = self._identifier()
        text = first.text
        while self._at("-") and self._adjacent(0) and self._peek(1).kind is Kind.IDENT:
            self._advance()
            text += "-" + self._advance().text
        return Token(Kind.IDENT, text, first.position)

    # ------------------------------------------------------------ statements

    def query(self) -> ast.Query:
        lets: list[ast.Let] = []
        while self._at("let"):
            lets.append(self._let())
        body = self._pipeline()
        self._accept(";")
        if self._peek().kind is not Kind.END:
            raise self._unexpected("end of query")
        return ast.Query(lets, body)

    def _let(self) -> ast.Let:
        start = self._advance().position
        name = self._identifier().text
        self._expect("=")
        value: ast.Expr | ast.Pipeline
        if self._at("(") or self._at("view"):
            raise KqlError(f"unsupported let function or view '{name}'", start)
        if self._at("print"):
            value = self._pipeline()
        else:
            start_index = self._index
            value = self._expression()
            if isinstance(value, ast.Name) and self._at("|"):  # a tabular expression
                self._index = start_index
                value = self._pipeline()
        self._expect(";")
        return ast.Let(name, value, start)

    def _pipeline(self) -> ast.Pipeline:
        source: ast.TableRef | ast.Print
        if self._at("print"):
            start = self._advance().position
            source = ast.Print(self._assignments(), start)
        else:
            table = self._identifier()
            source = ast.TableRef(table.text, table.position)
        operators: list[ast.Operator] = []
        while self._accept("|"):
            if self._peek().kind is not Kind.IDENT:
                raise self._unexpected("an operator name")
            word = self._hyphenated_word()
            parse_operator = self._operators.get(word.text)
            if parse_operator is None:
                raise KqlError(f"unsupported KQL operator '{word.text}'", word.position)
            operators.append(parse_operator(word.position))
        return ast.Pipeline(source, operators)

    # ------------------------------------------------------------ tabular operators

    def _where(self, position: int) -> ast.Operator:
        return ast.Where(self._expression(), position)

    def _project(self, position: int) -> ast.Operator:
        return ast.Project(self._assignments(), position)

    def _extend(self, position: int) -> ast.Operator:
        return ast.Extend(self._assignments(), position)

    def _project_columns(self, mode: str, position: int) -> ast.Operator:
        patterns = [self._name_pattern()]
        while self._accept(","):
            patterns.append(self._name_pattern())
        return ast.ProjectColumns(mode, patterns, position)

    def _name_pattern(self) -> ast.Name:
        """A column name that may contain ``*`` wildcards: ``col*``, ``*_id``."""
        start = self._peek()
        if start.kind is not Kind.IDENT and not self._at("*") and not self._at("["):
            raise self._unexpected("a column name")
        text = self._advance().text if self._at("*") else self._identifier().text
        while (self._at("*") or self._peek().kind is Kind.IDENT) and self._adjacent(0):
            text += self._advance().text
        return ast.Name(text, start.position)

    def _project_rename(self, position: int) -> ast.Operator:
        renames: list[tuple[str, ast.Name]] = []
        while True:
            new_name = self._identifier().text
            self._expect("=")
            old = self._identifier()
            renames.append((new_name, ast.Name(old.text, old.position)))
            if not self._accept(","):
                return ast.ProjectRename(renames, position)

    def _take(self, position: int) -> ast.Operator:
        return ast.Take(self._expression(), position)

    def _top(self, position: int) -> ast.Operator:
        count = self._expression()
        self._expect("by")
        return ast.Top(count, self._sort_key(), position)

    def _sort(self, position: int) -> ast.Operator:
        self._expect("by")
        keys = [self._sort_key()]
        while self._accept(","):
            keys.append(self._sort_key())
        return ast.Sort(keys, position)

    def _sort_key(self) -> ast.SortKey:
        expr = self._expression()
        descending = not self._accept("asc")
        if descending:
            self._accept("desc")
        nulls_first = not descending  # Kusto: asc puts nulls first, desc puts them last
        if self._accept("nulls"):
            if self._accept("first"):
                nulls_first = True
            else:
                self._expect("last")
                nulls_first = False
        return ast.SortKey(expr, descending, nulls_first)

    def _summarize(self, position: int) -> ast.Operator:
        aggregates = [] if self._at("by") else self._assignments()
        by = self._assignments() if self._accept("by") else []
        return ast.Summarize(aggregates, by, position)

    def _distinct(self, position: int) -> ast.Operator:
        if self._accept("*"):
            return ast.Distinct([], position)
        return ast.Distinct(self._assignments(), position)

    def _assignments(self) -> list[ast.Assignment]:
        items = [self._assignment()]
        while self._accept(","):
            items.append(self._assignment())
        return items

    def _assignment(self) -> ast.Assignment:
        named = self._peek().kind is Kind.IDENT and self._at("=", 1)
        bracketed = self._at("[") and self._peek(1).kind is Kind.STRING and self._at("=", 3)
        if named or bracketed:
            name = self._identifier().text
            self._expect("=")
            return ast.Assignment(name, self._expression())
        return ast.Assignment(None, self._expression())

    # ------------------------------------------------------------ scalar expressions

    def _expression(self, min_precedence: int = 0) -> ast.Expr:
        left = self._unary()
        while True:
            token = self._peek()
            precedence = self._infix_precedence(token)
            if precedence <= min_precedence:
                return left
            if precedence == _COMPARISON_PRECEDENCE:
                left = self._comparison(left)
            else:
                self._advance()
                right = self._expression(precedence)
                left = ast.Binary(token.text, left, right, token.position)

    def _infix_precedence(self, token: Token) -> int:
        if token.kind is Kind.SYMBOL:
            if token.text in _COMPARISON_SYMBOLS:
                return _COMPARISON_PRECEDENCE
            return _INFIX_PRECEDENCE.get(token.text, 0)
        if token.kind is Kind.IDENT:
            if token.text in _COMPARISON_WORDS:
                return _COMPARISON_PRECEDENCE
            return _INFIX_PRECEDENCE.get(token.text, 0)
        return 0

    def _comparison(self, left: ast.Expr) -> ast.Expr:
        token = self._advance()
        if token.text in _LIST_OPERATORS:
            op = token.text
            if op in ("in", "!in") and self._at("~") and self._adjacent(0):
                op += self._advance().text
            self._expect("(")
            items = [self._expression()]
            while self._accept(","):
                items.append(self._expression())
            self._expect(")")
            return ast.InList(op, left, items, token.position)
        if token.text in ("between", "!between"):
            self._expect("(")
            low = self._expression()
            self._expect("..")
            high = self._expression()
            self._expect(")")
            return ast.Between(left, low, high, token.text == "!between", token.position)
        op = token.text
        if op == "matches":
            self._expect("regex")
            op = "matches regex"
        right = self._expression(_COMPARISON_PRECEDENCE)
        return ast.Binary(op, left, right, token.position)

    def _unary(self) -> ast.Expr:
        token = self._peek()
        if token.kind is Kind.SYMBOL and token.text in ("-", "+"):
            self._advance()
            operand = self._expression(_UNARY_PRECEDENCE)
            if isinstance(operand, ast.Literal) and operand.kusto_type in ("long", "real"):
                if token.text == "-" and isinstance(operand.value, int | float):
                    return ast.Literal(operand.kusto_type, -operand.value, token.position)
                return operand
            return ast.Unary(token.text, operand, token.position)
        return self._postfix(self._primary())

    def _postfix(self, expr: ast.Expr) -> ast.Expr:
        while True:
            token = self._peek()
            if self._at("."):
                self._advance()
                key = self._identifier()
                expr = ast.Member(
                    expr, ast.Literal("string", key.text, key.position), token.position
                )
            elif self._at("["):
                self._advance()
                key_expr = self._expression()
                self._expect("]")
                expr = ast.Member(expr, key_expr, token.position)
            else:
                return expr

    def _primary(self) -> ast.Expr:
        token = self._peek()
        if token.kind is Kind.NUMBER:
            self._advance()
            kusto_type = "real" if isinstance(token.value, float) else "long"
            return ast.Literal(kusto_type, token.value, token.position)
        if token.kind is Kind.TIMESPAN:
            self._advance()
            return ast.Literal("timespan", token.value, token.position)
        if token.kind is Kind.STRING:
            self._advance()
            return ast.Literal("string", token.value, token.position)
        if token.kind is Kind.RAW_LITERAL:
            self._advance()
            return self._raw_literal(token)
        if self._accept("("):
            inner = self._expression()
            self._expect(")")
            return inner
        if self._at("[") and self._peek(1).kind is Kind.STRING:
            name = self._identifier()
            return ast.Name(name.text, name.position)
        if token.kind is Kind.IDENT:
            return self._word(token)
        raise self._unexpected("an expression")

    def _word(self, token: Token) -> ast.Expr:
        self._advance()
        if token.text.lower() in ("true", "false"):  # Kusto also takes True and TRUE
            return ast.Literal("bool", token.text.lower() == "true", token.position)
        if not self._at("("):
            return ast.Name(token.text, token.position)
        if token.text in _TYPED_SCALARS:
            return self._typed_scalar(token)
        self._advance()
        args: list[ast.Expr] = []
        if not self._at(")"):
            args.append(self._argument())
            while self._accept(","):
                args.append(self._argument())
        self._expect(")")
        return ast.Call(token.text, args, token.position)

    def _argument(self) -> ast.Expr:
        """An expression, or ``*`` for all columns as in ``arg_max(ts, *)``."""
        if self._at("*") and (self._at(",", 1) or self._at(")", 1)):
            return ast.Name("*", self._advance().position)
        return self._expression()

    def _typed_scalar(self, token: Token) -> ast.Literal:
        kusto_type = _TYPED_SCALARS[token.text]
        self._expect("(")
        if self._accept("null"):
            value: object = None
        elif kusto_type == "real" and (special := self._special_real()) is not None:
            value = special
        else:
            inner = self._expression()
            if not isinstance(inner, ast.Literal) or inner.kusto_type not in (
                "long",
                "real",
                "bool",
            ):
                raise KqlError(f"invalid {token.text} literal", token.position)
            value = inner.value
            if kusto_type in ("long", "int"):
                value = int(value)  # type: ignore[call-overload]
            elif kusto_type == "real":
                value = float(value)  # type: ignore[arg-type]
        self._expect(")")
        return ast.Literal(kusto_type, value, token.position)

    def _special_real(self) -> float | None:
        """``nan``, ``inf``, ``+inf``, ``-inf`` inside ``real(...)``."""
        signed = self._at("+") or self._at("-")
        word = self._peek(1 if signed else 0)
        if word.kind is not Kind.IDENT or word.text not in ("nan", "inf"):
            return None
        sign = -1.0 if self._at("-") else 1.0
        self._index += 2 if signed else 1
        return sign * float(word.text)

    def _raw_literal(self, token: Token) -> ast.Literal:
        kusto_type, body, position = token.text, str(token.value), token.position
        value: object
        if kusto_type == "datetime":
            value = parse_datetime(body, position)
        elif kusto_type == "timespan":
            value = parse_timespan(body, position)
        elif kusto_type == "guid":
            value = parse_guid(body, position)
        else:
            value = parse_dynamic(body, position)
        return ast.Literal(kusto_type, value, position)
