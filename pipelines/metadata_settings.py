"""Settings of the Kafka metadata columns (``metadata_columns`` of a mapping).

Apart from :mod:`pipelines.metadata`, which adds the columns, so that loading settings does
not import the decoders.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PARTS = ("key", "headers", "topic", "partition", "offset", "timestamp")
_KUSTO_COLUMN = re.compile(r"[A-Za-z0-9_.\- ]{1,1024}")


class MetadataColumns(BaseModel):
    """Column names for the parts of a Kafka record to add to each row (unset: left out).

    A settings model like those of :mod:`pipelines.config` (frozen, unknown fields refused),
    defined here because the settings import it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str | None = Field(None, description="Column for the record key (text)")
    headers: str | None = Field(None, description="Column for the headers, a JSON object")
    topic: str | None = Field(None, description="Column for the topic name")
    partition: str | None = Field(None, description="Column for the partition number")
    offset: str | None = Field(None, description="Column for the record's offset")
    timestamp: str | None = Field(None, description="Column for the record timestamp (UTC)")

    @field_validator(*PARTS)
    @classmethod
    def _kusto_column(cls, value: str | None) -> str | None:
        if value is not None and not _KUSTO_COLUMN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid Kusto column name "
                "(letters, digits, '_', '.', '-', ' '; at most 1024 characters)"
            )
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> MetadataColumns:
        names = list(self.columns().values())
        if not names:
            raise ValueError(f"choose a column name for at least one of {', '.join(PARTS)}")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"column names chosen twice: {', '.join(twice)}")
        return self

    def columns(self) -> dict[str, str]:
        """``{part: column name}`` of the parts that are set, in the fixed order."""
        return {part: getattr(self, part) for part in PARTS if getattr(self, part)}
