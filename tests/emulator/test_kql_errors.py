"""KQL the compiler refuses: every error names what is wrong and where (0-based offset)."""

import pytest

from devstack.kusto_emulator.kql import KqlError, compile_query


class EventsCatalog:
    database = "db"

    def columns(self, table: str) -> list[tuple[str, str]]:
        tables = {"Events": [("name", "string"), ("n", "long"), ("d", "dynamic")]}
        return list(tables[table])


CATALOG = EventsCatalog()


@pytest.mark.parametrize(
    ("kql", "message"),
    [
        ("Events | take 1 | mv-expand d", r"unsupported KQL operator 'mv-expand' at position 18"),
        ("Events | join (Events) on n", r"unsupported KQL operator 'join' at position 9"),
        (
            "Events | extend y = frobnicate(n)",
            r"unsupported KQL function 'frobnicate' at position 20",
        ),
        ("Nope | count", r"unknown table 'Nope' in database 'db' at position 0"),
        ("Events | where nope > 1", r"unknown column or name 'nope' at position 15"),
        ("Events | where n >", r"expected an expression, found end of query at position 18"),
        ("Events | where (n > 1", r"expected '\)', found end of query at position 21"),
        ("Events | project name,", r"expected an expression, found end of query"),
        ("Events | where name == 'open", r"unterminated string literal at position 23"),
        ("Events |", r"expected an operator name, found end of query at position 8"),
        ("Events | 42", r"expected an operator name, found '42' at position 9"),
        ("Events | where n > 1 extra", r"expected end of query, found 'extra' at position 21"),
        ("Events | where n > 1y", r"invalid number literal '1y' at position 19"),
        ("print datetime(2024-13-45)", r"invalid datetime literal 'datetime\(2024-13-45\)'"),
        ("print 'a' + 1", r"operator '\+' is not defined for string and long at position 10"),
        ("print strlen()", r"function 'strlen' expects 1 argument\(s\), got 0 at position 6"),
        ("print strcat()", r"function 'strcat' expects at least 1 argument\(s\), got 0"),
        ("print substring('a')", r"function 'substring' expects 2 to 3 argument\(s\), got 1"),
        ("print iff(1, 2, 3)", r"iff\(\): conditions must be bool, got long at position 6"),
        ("print iff(true, 'a', 1)", r"iff\(\): arguments differ in type: string and long"),
        (
            "print case(true, 1, false, 2)",
            r"case\(\): expected predicate/value pairs and a final else",
        ),
        ("print bin(now(), 5)", r"bin\(\): a datetime needs a timespan bin size at position 6"),
        ("print name.a", r"unknown column or name 'name'"),
        ("Events | project name.a", r"property access needs a dynamic value, got string"),
        ("Events | project-away *", r"project-away leaves no columns at position 9"),
        ("Events | take 'x'", r"row count must be an integer, got string at position 14"),
        ("Events | order n", r"expected 'by', found 'n' at position 15"),
        ("Events | where n # 1", r"unexpected character '#' at position 17"),
        ("let f = (a: long) { a }; print f(1)", r"unsupported let function or view 'f'"),
        ("print dynamic([1,", r"unbalanced parenthesis in literal at position 6"),
        ("print dynamic([1 2])", r"invalid dynamic literal 'dynamic\(\[1 2\]\)' at position 6"),
    ],
)
def test_errors_name_what_and_where(kql: str, message: str) -> None:
    with pytest.raises(KqlError, match=message):
        compile_query(kql, CATALOG)


def test_error_position_is_kept_for_servers() -> None:
    with pytest.raises(KqlError) as caught:
        compile_query("Events | mv-expand d", CATALOG)
    assert caught.value.position == 9


def test_very_deep_queries_fail_cleanly() -> None:
    kql = "Events | where " + " or ".join(f"n == {value}" for value in range(3000))
    with pytest.raises(KqlError, match=r"query nests too deeply"):
        compile_query(kql, CATALOG)
