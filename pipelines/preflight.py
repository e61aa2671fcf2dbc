"""Fail fast: check, before any record is read, that every system the sink needs answers.

Settings are already valid when this runs (the model checked them); here the live
systems are asked: the Kafka cluster and each topic, the Kusto cluster, each database,
table and ingestion mapping, and the schema registries. Each problem names the setting or
object at fault; all of them are reported at once.
"""

from __future__ import annotations

from azure.kusto.data import KustoClient
from confluent_kafka import KafkaException

from pipelines.config import TopicMapping
from pipelines.config.kafka_client import kafka_client_config
from pipelines.errors import ConfigError, Problem, SinkError
from pipelines.ingest import kusto_errors
from pipelines.kafka_login import login_problem
from pipelines.runtime import SinkRuntime

KAFKA_TIMEOUT_S = 10.0


def preflight(runtime: SinkRuntime) -> list[Problem]:
    """Every problem that would stop the sink, checked against the live systems."""
    problems = _kafka_problems(runtime)
    problems += _kusto_problems(runtime)
    return problems


def check(runtime: SinkRuntime) -> None:
    """Raise one ConfigError listing every problem :func:`preflight` finds."""
    problems = preflight(runtime)
    if problems:
        raise ConfigError(problems)


def _kafka_problems(runtime: SinkRuntime) -> list[Problem]:
    settings = runtime.settings
    # A refused login shows in a second here, instead of as a timeout of the requests below.
    logins = {"kafka.security": settings.kafka}
    logins |= {
        f"{field}.security": connection
        for field in ("dead_letter", "misc_dead_letter")
        if (connection := getattr(settings, field)) is not None
    }
    refused = [
        Problem(setting, problem)
        for setting, connection in logins.items()
        if (problem := login_problem(kafka_client_config(connection), KAFKA_TIMEOUT_S))
    ]
    if refused:
        return refused
    try:
        existing = runtime.admin.list_topics(timeout=KAFKA_TIMEOUT_S).topics
    except KafkaException as error:
        return [
            Problem(
                "kafka.bootstrap_servers",
                f"Kafka at {settings.kafka.bootstrap_servers} did not answer within "
                f"{KAFKA_TIMEOUT_S:.0f}s: {error.args[0]}",
            )
        ]
    problems = [
        Problem("topics", f"topic {topic} does not exist on {settings.kafka.bootstrap_servers}")
        for topic in settings.topics or []
        if topic not in existing
    ]
    if settings.topics_regex and not runtime.topics():
        problems.append(Problem("topics_regex", f"no topic matches {settings.topics_regex} (yet)"))
    return problems


def _kusto_problems(runtime: SinkRuntime) -> list[Problem]:
    settings = runtime.settings
    try:
        client = runtime.query_client
        with kusto_errors(f"reaching Kusto at {settings.kusto.query_url}"):
            client.execute_mgmt(None, ".show version")
    except SinkError as error:
        return [Problem("kusto.query_url", str(error))]
    problems: list[Problem] = []
    for index, mapping in enumerate(settings.mappings):
        where = f"mappings[{index}]"
        problems += _mapping_problems(client, mapping, where)
    return problems


def _mapping_problems(client: KustoClient, mapping: TopicMapping, where: str) -> list[Problem]:
    db, table = mapping.db, mapping.table

    def ask(command: str) -> list[dict[str, object]] | str:
        try:
            with kusto_errors(f"{command} in database {db}"):
                result = client.execute_mgmt(db, command).primary_results[0]
        except SinkError as error:
            return str(error)
        return [row.to_dict() for row in result]

    tables = ask(".show tables")
    if isinstance(tables, str):
        return [Problem(f"{where}.db", f"database {db} cannot be read: {tables}")]
    if table not in {row["TableName"] for row in tables}:
        return [Problem(f"{where}.table", f"table {table} does not exist in database {db}")]
    if mapping.mapping is None:
        return []
    mappings = ask(f".show table ['{table}'] ingestion mappings")
    if isinstance(mappings, str):
        return [Problem(f"{where}.mapping", mappings)]
    kind = _mapping_kind(mapping.format)
    found = {(str(row["Name"]), str(row["Kind"]).lower()) for row in mappings}
    if (mapping.mapping, kind) not in found:
        names = sorted(name for name, k in found if k == kind) or ["none"]
        return [
            Problem(
                f"{where}.mapping",
                f"table {db}.{table} has no {kind} ingestion mapping named {mapping.mapping} "
                f"(its {kind} mappings: {', '.join(names)})",
            )
        ]
    return []


_MAPPING_KINDS: dict[str, str] = {
    "json": "json",
    "multijson": "json",
    "avro": "avro",
    "apacheavro": "avro",
    "parquet": "parquet",
    "orc": "orc",
}


def _mapping_kind(format: str) -> str:
    # Delimited formats (csv, tsv, psv, txt) all use csv mappings.
    return _MAPPING_KINDS.get(format, "csv")
