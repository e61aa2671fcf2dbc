"""The sink's settings: typed, frozen pydantic models, validated all at once.

Field names are ours; the Kafka Connect property each one replaces is named in its
description (see :mod:`pipelines.config.connect` for the import). Checks that span several
fields report every problem they find, each naming its field, through
:func:`~pipelines.config.base.report_problems`. The Kafka and Kusto parts live in
:mod:`~pipelines.config.kafka_settings` and :mod:`~pipelines.config.kusto_settings`.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from pipelines.config.base import FrozenModel, is_set, lower, report_problems
from pipelines.config.kafka_settings import KafkaConnection, KafkaSettings
from pipelines.config.kusto_settings import KustoSettings
from pipelines.config.references import SecretText
from pipelines.metadata_settings import MetadataColumns

FormatName = Literal[
    "json", "multijson", "csv", "tsv", "psv", "txt", "avro", "apacheavro", "parquet", "orc"
]
FORMATS: tuple[str, ...] = get_args(FormatName)
WHOLE_FILE_FORMATS = ("parquet", "orc")
REGISTRY_CONVERTERS = ("avro", "json_schema", "protobuf")

_KUSTO_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,1024}")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._\-]{1,249}")
_SINK_NAME = re.compile(r"[A-Za-z0-9._\-]{1,200}")
_FORMAT_ALIASES = {"singlejson": "json"}  # the reference treats every JSON flavour as JSON

log = logging.getLogger(__name__)


def _kusto_name(value: str) -> str:
    if not _KUSTO_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kusto name "
            "(letters, digits, '_', '.', '-'; at most 1024 characters)"
        )
    return value


def _topic_name(value: str) -> str:
    if not _TOPIC_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid Kafka topic name "
            "(letters, digits, '.', '_', '-'; at most 249 characters)"
        )
    return value


def _format(value: Any) -> Any:
    value = lower(value)
    return _FORMAT_ALIASES.get(value, value)


def _topic_list(value: Any) -> Any:
    if isinstance(value, str):
        return [topic.strip() for topic in value.split(",") if topic.strip()]
    return value


KustoName = Annotated[str, AfterValidator(_kusto_name)]
TopicName = Annotated[str, AfterValidator(_topic_name)]
Format = Annotated[FormatName, BeforeValidator(_format)]
ConverterKind = Literal["string", "json", "avro", "json_schema", "protobuf", "bytes"]


class ConverterSettings(FrozenModel):
    """How record keys or values are read (key.converter / value.converter)."""

    kind: Annotated[ConverterKind, BeforeValidator(lower)] = Field(
        "string", description="string, json, avro, json_schema, protobuf or bytes"
    )
    schema_registry_url: str | None = Field(
        None,
        description="value.converter.schema.registry.url; required for avro, "
        "json_schema and protobuf",
    )
    schemas_enable: bool = Field(
        False,
        description="JSON records carry a {schema, payload} envelope "
        "(value.converter.schemas.enable)",
    )
    registry_username: str | None = Field(None, description="Schema registry basic-auth user")
    registry_password: SecretText | None = Field(None, description="Schema registry password")

    @field_validator("schema_registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ConverterSettings:
        problems = []
        registry = self.kind in REGISTRY_CONVERTERS
        if registry and not self.schema_registry_url:
            problems.append(("schema_registry_url", f"required with kind {self.kind}"))
        if not registry:
            problems += [
                (field, f"has no effect with kind {self.kind}")
                for field in ("schema_registry_url", "registry_username", "registry_password")
                if is_set(self, field)
            ]
        if self.schemas_enable and self.kind != "json":
            problems.append(("schemas_enable", f"has no effect with kind {self.kind}"))
        if is_set(self, "registry_username") != is_set(self, "registry_password"):
            problems.append(("registry_password", "registry_username and password go together"))
        report_problems(problems)
        return self


class TopicMapping(FrozenModel):
    """Records of one topic go to one table (an entry of kusto.tables.topics.mapping)."""

    topic: str = Field(description="Kafka topic, or '*' for every topic without its own mapping")
    db: KustoName = Field(description="Kusto database")
    table: KustoName = Field(description="Kusto table")
    format: Format = Field("csv", description="Kusto ingestion format (the reference's default)")
    mapping: KustoName | None = Field(None, description="Name of the table's ingestion mapping")
    streaming: bool = Field(False, description="Streaming ingestion, queued for large batches")
    value_converter: ConverterSettings | None = Field(
        None, description="This topic's value converter, if not the sink's"
    )
    tombstones: Annotated[Literal["skip", "dead_letter"], BeforeValidator(lower)] = Field(
        "skip", description="What to do with records whose value is null"
    )
    evolve_schema: bool = Field(
        False,
        description="Extend the table and its mapping when the writer schema gains fields "
        "(.create-merge table); needs a schema-registry converter",
    )
    metadata_columns: MetadataColumns | None = Field(
        None, description="Kafka key, headers, topic, partition, offset, timestamp as columns"
    )

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return value if value == "*" else _topic_name(value)


class RetrySettings(FrozenModel):
    """Retries of transient errors with exponential back-off."""

    max_time_ms: int = Field(300_000, ge=0, description="errors.retry.max.time.ms")
    backoff_ms: int = Field(10_000, ge=1, description="errors.retry.backoff.time.ms")


class DeadLetterSettings(KafkaConnection):
    """A dead-letter topic and the cluster it lives on."""

    topic: TopicName = Field(
        description="errors.deadletterqueue.topic.name or misc.deadletterqueue.topic.name"
    )


def _default_tempdir() -> Path:
    return Path(tempfile.gettempdir()) / "kusto-sink"


class SinkSettings(FrozenModel):
    """Everything one sink needs: where records come from, where they go, and how."""

    name: str = Field(description="Sink name (Kafka Connect `name`); names groups and ids")
    group_id: str = Field(
        description="Consumer group holding committed offsets; default kusto-sink-<name>, "
        "connect-<name> when imported from Kafka Connect"
    )
    kafka: KafkaSettings = Field(description="The source Kafka cluster")
    kusto: KustoSettings = Field(description="The Kusto cluster")
    topics: Annotated[list[TopicName] | None, BeforeValidator(_topic_list)] = Field(
        None,
        description="topics (a list, or comma-separated like Kafka Connect's); or topics_regex",
    )
    topics_regex: str | None = Field(None, description="topics.regex; or topics")
    mappings: list[TopicMapping] = Field(min_length=1, description="kusto.tables.topics.mapping")
    value_converter: ConverterSettings = Field(ConverterSettings(), description="value.converter")
    key_converter: ConverterSettings = Field(ConverterSettings(), description="key.converter")
    flush_size_bytes: int = Field(
        1_048_576, ge=100, description="Batch size in raw bytes per partition (flush.size.bytes)"
    )
    flush_interval_ms: int = Field(
        30_000, ge=100, description="Longest wait before a partition is flushed (flush.interval.ms)"
    )
    max_range_records: int = Field(
        1_000_000, ge=1, description="Largest offset range one run reads from a partition"
    )
    lag_threshold_records: int = Field(
        100_000,
        ge=1,
        description="A partition this many records behind gets a run at once, "
        "without waiting for flush_interval_ms (the lag sensor)",
    )
    tempdir: Path = Field(
        default_factory=_default_tempdir, description="Staging directory (tempdir.path)"
    )
    behavior_on_error: Annotated[Literal["fail", "log", "ignore"], BeforeValidator(lower)] = Field(
        "fail", description="behavior.on.error"
    )
    retry: RetrySettings = Field(RetrySettings(), description="errors.retry.*")
    dead_letter: DeadLetterSettings | None = Field(
        None, description="Records that cannot be decoded (errors.deadletterqueue.*)"
    )
    misc_dead_letter: DeadLetterSettings | None = Field(
        None,
        description="Records not delivered for other reasons, retries spent "
        "(misc.deadletterqueue.*)",
    )
    delivery: Annotated[Literal["exactly_once", "at_least_once"], BeforeValidator(lower)] = Field(
        "exactly_once", description="exactly_once (tagged batches) or at_least_once"
    )
    tasks_max: int = Field(1, ge=1, description="Parallelism hint (tasks.max)")

    @model_validator(mode="before")
    @classmethod
    def _default_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and "group_id" not in data and isinstance(data.get("name"), str):
            data = {**data, "group_id": f"kusto-sink-{data['name']}"}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SINK_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r}: letters, digits, '.', '_', '-' only (it names groups and ids)"
            )
        return value

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("at least one topic is required")
        twice = sorted({topic for topic in value if value.count(topic) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}")
        return value

    @field_validator("topics_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"{value!r} is not a regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SinkSettings:
        problems: list[tuple[str, str]] = []
        if (self.topics is None) == (self.topics_regex is None):
            problems.append(("topics", "set exactly one of topics and topics_regex"))
        for topic in self.topics or []:
            if not self.mapping_for(topic):
                problems.append(
                    ("mappings", f"topic {topic} has no mapping and there is no '*' mapping")
                )
        for field in ("dead_letter", "misc_dead_letter"):
            dead_letter = getattr(self, field)
            if dead_letter is not None and self.reads_topic(dead_letter.topic):
                problems.append(
                    (f"{field}.topic", f"{dead_letter.topic} is a source topic of this sink")
                )
        seen: set[tuple[str, str, str]] = set()
        for index, mapping in enumerate(self.mappings):
            where = f"mappings[{index}]"
            target = (mapping.topic, mapping.db, mapping.table)
            if target in seen:
                problems.append(
                    (
                        where,
                        f"topic {mapping.topic} is mapped twice to {mapping.db}.{mapping.table}",
                    )
                )
            seen.add(target)
            if mapping.topic != "*" and not self.reads_topic(mapping.topic):
                problems.append((f"{where}.topic", f"{mapping.topic} is not a topic of this sink"))
            converter = self.value_converter_for(mapping)
            if mapping.format in WHOLE_FILE_FORMATS and converter.kind != "bytes":
                problems.append(
                    (
                        f"{where}.format",
                        f"{mapping.format} records are whole files and need the bytes "
                        f"converter, not {converter.kind}",
                    )
                )
            if mapping.evolve_schema and converter.kind not in REGISTRY_CONVERTERS:
                problems.append(
                    (
                        f"{where}.evolve_schema",
                        f"needs a schema-registry converter (avro, json_schema, protobuf), "
                        f"not {converter.kind}",
                    )
                )
            if mapping.metadata_columns and (
                mapping.format in (*WHOLE_FILE_FORMATS, "txt")
                or (converter.kind == "bytes" and mapping.format in ("avro", "apacheavro"))
            ):
                problems.append(
                    (
                        f"{where}.metadata_columns",
                        f"{mapping.format} rows carried whole or as plain text cannot take "
                        "extra fields; use JSON, delimited text or registry Avro",
                    )
                )
            if mapping.tombstones == "dead_letter" and self.dead_letter is None:
                problems.append((f"{where}.tombstones", "dead_letter needs a dead_letter topic"))
        if self.behavior_on_error != "fail" and self.dead_letter is None:
            # The reference's own quickstart says LOG without a dead-letter topic and drops
            # bad records. Such a config loads here, but a bad record stops its partition
            # (pipelines/deliver.py): a record never ends up nowhere.
            log.warning(
                "behavior_on_error=%s without a dead_letter topic: a record that cannot be "
                "decoded stops its partition instead of being dropped; configure dead_letter "
                "(errors.deadletterqueue.topic.name) to dead-letter it and go on",
                self.behavior_on_error,
            )
        report_problems(problems)
        return self

    def reads_topic(self, topic: str) -> bool:
        """Whether the sink consumes ``topic`` (listed, or matching the whole regex)."""
        if self.topics_regex is not None:
            return re.fullmatch(self.topics_regex, topic) is not None
        return topic in (self.topics or [])

    def mapping_for(self, topic: str) -> list[TopicMapping]:
        """The mappings of ``topic``: its own, else the '*' fallback; [] if neither."""
        own = [mapping for mapping in self.mappings if mapping.topic == topic]
        return own or [mapping for mapping in self.mappings if mapping.topic == "*"]

    def value_converter_for(self, mapping: TopicMapping) -> ConverterSettings:
        """The converter for values of ``mapping``'s topic: its own, else the sink's."""
        return mapping.value_converter or self.value_converter
