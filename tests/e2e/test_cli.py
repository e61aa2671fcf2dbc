"""`kusto-sink validate | plan | drain` as a user migrating from the Java connector runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import create_event_table, event

pytestmark = pytest.mark.stack


def kusto_sink(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def connect_properties(stack, name: str, topic: str, db: str) -> str:
    # Written as for the Java connector; only the URLs point at the local stack.
    return f"""
name={name}
connector.class=com.microsoft.azure.kusto.kafka.connect.sink.KustoSinkConnector
tasks.max=1
topics={topic}
kusto.ingestion.url={stack.kusto_url}
kusto.query.url={stack.kusto_url}
kusto.tables.topics.mapping=[{{'topic': '{topic}','db': '{db}', 'table': 'Events', \\
  'format': 'multijson', 'mapping':'events_json'}}]
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
flush.size.bytes=20000
flush.interval.ms=10000
behavior.on.error=fail
consumer.override.bootstrap.servers={stack.bootstrap_servers}
consumer.override.auto.offset.reset=earliest
"""


def test_validate_plan_drain_with_a_connect_properties_file(
    stack, kusto, kusto_db, make_topic, produce, tmp_path, monkeypatch
):
    topic = make_topic(partitions=2)
    create_event_table(kusto, kusto_db, "Events")
    produce(topic, [event(i) for i in range(600)], partitions=2)
    props = tmp_path / "kusto-sink.properties"
    props.write_text(connect_properties(stack, f"migrated-{topic}", topic, kusto_db))
    env = {**__import__("os").environ, "DAGSTER_HOME": str(tmp_path / "dagster_home")}

    validated = kusto_sink("validate", "-c", str(props), cwd=tmp_path, env=env)
    assert validated.returncode == 0, validated.stderr
    assert f"group connect-migrated-{topic}" in validated.stdout

    planned = kusto_sink("plan", "-c", str(props), cwd=tmp_path, env=env)
    assert planned.returncode == 0, planned.stderr
    assert f"{topic}[0]" in planned.stdout and "total lag 600 records" in planned.stdout

    drained = kusto_sink("drain", "-c", str(props), cwd=tmp_path, env=env)
    assert drained.returncode == 0, drained.stderr + drained.stdout
    assert "lag is 0" in drained.stdout

    count = kusto.execute_query(kusto_db, "Events | count").primary_results[0][0]["Count"]
    assert count == 600
    again = kusto_sink("plan", "-c", str(props), cwd=tmp_path, env=env)
    assert "total lag 0 records" in again.stdout


def test_validate_names_each_missing_object(stack, kusto_db, make_topic, tmp_path):
    topic = make_topic(partitions=1)
    props = tmp_path / "broken.properties"
    text = connect_properties(stack, "broken", topic, kusto_db).replace(
        f"topics={topic}", f"topics={topic},no-such-topic"
    )
    text = text.replace(
        "kusto.tables.topics.mapping=[",
        "kusto.tables.topics.mapping=[{'topic': 'no-such-topic','db': 'nodb', 'table': 'T', "
        "'format': 'json'},",
    )
    props.write_text(text)
    result = kusto_sink("validate", "-c", str(props), cwd=tmp_path)
    assert result.returncode != 0
    assert "topic no-such-topic does not exist" in result.stderr
    assert "table Events does not exist in database" in result.stderr
    assert "database nodb" in result.stderr
