"""Kusto scalar types, their DuckDB storage types, and Kusto's rules for result types."""

from ._errors import KqlError

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "decimal": "DECIMAL(38,10)",
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "timespan": "INTERVAL",
    "dynamic": "JSON",
    "guid": "UUID",
}

# Other spellings Kusto accepts in table schemas.
_ALIASES = {
    "double": "real",
    "boolean": "bool",
    "date": "datetime",
    "time": "timespan",
    "uniqueid": "guid",
    "int64": "long",
    "int32": "int",
    "object": "dynamic",
}

NUMERIC_TYPES = ("int", "long", "decimal", "real")  # narrowest first


def normalize_type(kusto_type: str) -> str:
    """A catalog's type name -> one of the keys of DUCKDB_TYPES."""
    name = kusto_type.strip().lower()
    if name.startswith("system."):  # .NET names appear in some schemas: System.String
        name = {"system.string": "string", "system.datetime": "datetime"}.get(name, name[7:])
    name = _ALIASES.get(name, name)
    if name not in DUCKDB_TYPES:
        raise KqlError(f"unsupported Kusto column type '{kusto_type}'")
    return name


def wider_numeric(left: str, right: str) -> str:
    """Kusto's numeric promotion: real beats decimal beats long beats int."""
    if "real" in (left, right):
        return "real"
    return max(left, right, key=NUMERIC_TYPES.index)


def is_numeric(kusto_type: str) -> bool:
    return kusto_type in NUMERIC_TYPES
