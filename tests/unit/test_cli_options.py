"""The Dagster instance the kusto-sink commands use when DAGSTER_HOME is not set."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.cli_options import PROJECT_INSTANCE_SETTINGS, dagster_home


def test_the_default_home_gets_the_projects_instance_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)

    home = dagster_home()

    assert home == tmp_path / "dagster_home"
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    limits = settings["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert {limit["key"] for limit in limits} >= {"kusto-sink/sink", "kusto-sink/backfill"}
    assert dagster_home() == home, "a second call changes nothing"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled, "dead run workers would hold partitions"


def test_a_home_the_user_chose_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(chosen))

    assert dagster_home() == chosen and chosen.is_dir()
    assert not (chosen / "dagster.yaml").exists()
    assert PROJECT_INSTANCE_SETTINGS.exists(), "tests run from a source checkout"
