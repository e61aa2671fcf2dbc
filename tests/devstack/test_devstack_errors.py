"""Clear messages when the stack cannot start (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from devstack.cli import devstack
from devstack.kafka import kafka_server
from devstack.process import StackError, free_port, start


def test_missing_java_names_kafka_and_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    log_file = tmp_path / "logs" / "kafka.log"
    server = kafka_server(tmp_path, tmp_path / "lib", log_file, free_port(), free_port())

    with pytest.raises(StackError) as raised:
        start(server, tmp_path / "run")

    assert "kafka cannot start: `java` is not on PATH" in str(raised.value)
    assert f"Log file: {log_file}" in str(raised.value)


def test_unknown_server_name_lists_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        devstack, ["up", "--only", "zookeeper", "--devstack-dir", str(tmp_path)]
    )

    assert result.exit_code == 1
    assert "unknown server(s) zookeeper" in result.output
    assert "kafka, azurite, schema-registry, kusto-emulator" in result.output
