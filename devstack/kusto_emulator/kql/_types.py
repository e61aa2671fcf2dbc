"""Kusto scalar types: the emulator's storage mapping, and Kusto's numeric promotion."""

from devstack.kusto_emulator.kusto_types import DUCKDB_TYPES, UnknownTypeError, canonical_type

from ._errors import KqlError

__all__ = ["DUCKDB_TYPES", "is_numeric", "normalize_type", "wider_numeric"]

NUMERIC_TYPES = ("int", "long", "decimal", "real")  # narrowest first


def normalize_type(kusto_type: str) -> str:
    """A catalog's type name (aliases such as ``double`` or ``System.String`` allowed) ->
    Kusto's canonical name."""
    try:
        return canonical_type(kusto_type)
    except UnknownTypeError:
        raise KqlError(f"unsupported Kusto column type '{kusto_type}'") from None


def wider_numeric(left: str, right: str) -> str:
    """Kusto's numeric promotion: real beats decimal beats long beats int."""
    if "real" in (left, right):
        return "real"
    return max(left, right, key=NUMERIC_TYPES.index)


def is_numeric(kusto_type: str) -> bool:
    return kusto_type in NUMERIC_TYPES
