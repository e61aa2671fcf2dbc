"""Clear messages when the stack cannot start (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from devstack.cli import devstack
from devstack.kafka import kafka_server
from devstack.process import StackError


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    server = kafka_server(tmp_path, tmp_path / "lib", tmp_path / "kafka.log", 9092, 9093)
    assert server.prepare is not None

    with pytest.raises(StackError, match="kafka cannot start: `java` is not on PATH"):
        server.prepare()


def test_unknown_server_name_lists_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        devstack, ["up", "--only", "zookeeper", "--devstack-dir", str(tmp_path)]
    )

    assert result.exit_code == 1
    assert "unknown server(s) zookeeper" in result.output
    assert "kafka, azurite, schema-registry, kusto-emulator" in result.output
