"""deploy/: the Helm values against the chart's value schema, the Dockerfile against the repo.

The full image build (every RUN step into a fresh venv, then the code server's health
check) takes minutes of downloads: `python deploy/check_build.py` runs it; here the
Dockerfile is checked for what would break that build.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"


def check_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_build", REPO / "deploy" / "check_build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_build", module)
    spec.loader.exec_module(module)
    return module


def schema_errors(values: dict[str, object]) -> list[str]:
    schema = json.loads((HELM / "chart-values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(values)
    ]


def helm_values() -> dict[str, object]:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def test_helm_values_fit_the_chart_schema():
    assert schema_errors(helm_values()) == []


@pytest.mark.parametrize(
    "section, misspelt",
    [
        ("dagsterDaemon", "runCordinator"),
        ("runLauncher", "configs"),
        ("telemetry", "enable"),
    ],
)
def test_the_schema_refuses_a_misspelt_key(section: str, misspelt: str):
    values = helm_values()
    values[section] = {**values[section], misspelt: {}}  # type: ignore[dict-item]
    assert any(misspelt in error for error in schema_errors(values))


def test_helm_and_dagster_postgres_yaml_limit_runs_alike():
    daemon = helm_values()["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]  # type: ignore[index]
    instance = yaml.safe_load((REPO / "dagster_postgres.yaml").read_text())
    coordinator = instance["run_coordinator"]["config"]
    assert queued["maxConcurrentRuns"] == coordinator["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == coordinator["tag_concurrency_limits"]
    assert queued["dequeueIntervalSeconds"] == coordinator["dequeue_interval_seconds"]
    assert queued["dequeueUseThreads"] == coordinator["dequeue_use_threads"]
    assert queued["dequeueNumWorkers"] == coordinator["dequeue_num_workers"]
    assert daemon["sensors"] == {  # type: ignore[index]
        "useThreads": instance["sensors"]["use_threads"],
        "numWorkers": instance["sensors"]["num_workers"],
    }
    assert daemon["runRetries"] == {  # type: ignore[index]
        "enabled": instance["run_retries"]["enabled"],
        "maxRetries": instance["run_retries"]["max_retries"],
    }


def test_dagster_postgres_yaml_limits_the_same_tags_as_dagster_yaml():
    def limited(path: Path) -> list[str]:
        config = yaml.safe_load(path.read_text())["run_coordinator"]["config"]
        return [limit["key"] for limit in config["tag_concurrency_limits"]]

    assert limited(REPO / "dagster_postgres.yaml") == limited(REPO / "dagster.yaml")


def test_dockerfile_copies_what_exists_and_installs_a_declared_extra():
    build = check_build()
    steps = build.parse(REPO / "deploy" / "Dockerfile")
    copied = [
        source
        for step in steps
        if step.instruction == "COPY"
        for source in step.argument.split()[:-1]
    ]
    assert [s for s in copied if not (REPO / s).exists()] == []
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in packages["packages"]["find"]["include"]:
        assert package.rstrip("*") in copied, f"package {package} is installed but not copied"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = [s.argument for s in steps if s.instruction == "RUN" and "pip install" in s.argument]
    assert pip and "'.[production]'" in pip[0]
    assert "production" in extras["optional-dependencies"]


def test_dockerfile_serves_the_definitions_workspace_yaml_loads():
    build = check_build()
    steps = build.parse(REPO / "deploy" / "Dockerfile")
    cmd = build.exec_form(next(s.argument for s in steps if s.instruction == "CMD"))
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]
    module = workspace["python_module"]
    assert cmd[cmd.index("--module-name") + 1] == module["module_name"]
    assert cmd[cmd.index("--attribute") + 1] == module["attribute"]
    port = cmd[cmd.index("--port") + 1]
    deployment = helm_values()["dagster-user-deployments"]["deployments"][0]  # type: ignore[index]
    assert deployment["port"] == int(port)
    assert deployment["dagsterApiGrpcArgs"] == [
        "--module-name",
        module["module_name"],
        "--attribute",
        module["attribute"],
    ]
