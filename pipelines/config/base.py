"""What every settings model shares: frozen, strict, and all problems reported at once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError


class FrozenModel(BaseModel):
    """A settings model: immutable, and unknown fields are errors, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def report_problems(problems: list[tuple[str, str]]) -> None:
    """Raise every ``(field, message)`` problem found by a cross-field check at once.

    :func:`pipelines.config.validate.problems_of` unpacks them into one problem each,
    named by the field's full path.
    """
    if problems:
        raise PydanticCustomError(
            "sink_settings",
            "{detail}",
            {"detail": "; ".join(f"{f}: {m}" for f, m in problems), "problems": problems},
        )


def is_set(model: BaseModel, field: str) -> bool:
    """Whether ``field`` of ``model`` holds a value (empty text and maps count as unset)."""
    return getattr(model, field) not in (None, {}, "")


def lower(value: Any) -> Any:
    """Lower-case text, so ``FAIL`` and ``fail`` both match a literal (as in the reference)."""
    return value.lower() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    """Upper-case text, for Kafka's upper-case names (``sasl_ssl`` is ``SASL_SSL``)."""
    return value.upper() if isinstance(value, str) else value
