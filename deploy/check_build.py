"""Run deploy/Dockerfile's build steps without Docker: into a fresh venv, then start its CMD.

    python deploy/check_build.py [--workdir DIR] [--port PORT]

ENV, WORKDIR and COPY are replayed into ``DIR/root`` (the image's file system, paths
rebased under it); RUN commands run one ``&&`` part at a time, with ``pip`` and ``python``
taken from a new venv made with this interpreter (the image's ``python:3.11``); ``useradd``
and ``USER`` are skipped (they change this machine, not the image's Python). Then the
CMD's code server starts on ``PORT`` with the example settings and must answer Dagster's
gRPC health check, which means the code location imported and its definitions loaded.
Exit status 0 when every step passed. ~3-6 min with a cold pip cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIPPED = ("useradd",)
IGNORE_FILE = REPO / "deploy" / "Dockerfile.dockerignore"
EXAMPLE_SETTINGS = REPO / "examples" / "local.yaml"


@dataclass(frozen=True)
class Step:
    instruction: str
    argument: str


def parse(dockerfile: Path) -> list[Step]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    steps: list[Step] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        instruction, _, argument = (pending + stripped).partition(" ")
        steps.append(Step(instruction.upper(), argument.strip()))
        pending = ""
    return steps


def ignored_names(ignore_file: Path) -> set[str]:
    """Names that ``**/NAME`` or ``NAME`` patterns of the ignore file leave out of the
    build context (the only pattern forms deploy/Dockerfile.dockerignore uses)."""
    names = set()
    for line in ignore_file.read_text().splitlines():
        pattern = line.strip()
        if pattern and not pattern.startswith("#"):
            names.add(pattern.removeprefix("**/").split("/")[-1])
    return names


def env_pairs(argument: str) -> dict[str, str]:
    """``ENV A=1 B=2`` as a dict."""
    return dict(word.split("=", 1) for word in shlex.split(argument))


def exec_form(argument: str) -> list[str]:
    """``CMD ["a", "b"]`` as a list (the JSON exec form)."""
    return list(json.loads(argument))


class Build:
    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "root"
        self.venv = workdir / "venv"
        self.env: dict[str, str] = {}
        self.cwd = self.root
        self.cmd: list[str] = []

    def rebase(self, path: str) -> Path:
        return self.root / path.lstrip("/") if path.startswith("/") else self.cwd / path

    def apply(self, step: Step) -> str:
        if step.instruction == "FROM":
            venv.EnvBuilder(with_pip=True, clear=True).create(self.venv)
            return f"venv {self.venv} for {step.argument} (Python {sys.version.split()[0]})"
        if step.instruction == "ENV":
            self.env.update(env_pairs(step.argument))
            return ", ".join(self.env)
        if step.instruction == "WORKDIR":
            self.cwd = self.rebase(step.argument)
            self.cwd.mkdir(parents=True, exist_ok=True)
            return str(self.cwd)
        if step.instruction == "COPY":
            *sources, target = shlex.split(step.argument)
            destination = self.rebase(target)
            ignore = shutil.ignore_patterns(*ignored_names(IGNORE_FILE))
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(origin, destination, dirs_exist_ok=True, ignore=ignore)
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, destination)
            return f"{' '.join(sources)} -> {destination}"
        if step.instruction == "RUN":
            for part in step.argument.split("&&"):
                self.run(shlex.split(part))
            return "ok"
        if step.instruction == "CMD":
            self.cmd = exec_form(step.argument)
            return " ".join(self.cmd)
        return "skipped (no effect outside a container)"

    def environment(self) -> dict[str, str]:
        rebased = {
            key: str(self.rebase(value)) if value.startswith("/") else value
            for key, value in self.env.items()
        }
        path = f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
        return {**os.environ, **rebased, "PATH": path, "VIRTUAL_ENV": str(self.venv)}

    def run(self, words: list[str]) -> None:
        if words[0] in SKIPPED:
            say(f"    skipped: {' '.join(words)}")
            return
        env = self.environment()
        # "$DAGSTER_HOME" and the like, as the image's shell would expand them.
        words = [_expand(word, env) for word in words]
        say(f"    $ {' '.join(words)}")
        subprocess.run(words, cwd=self.cwd, env=env, check=True)

    def serve(self, port: int, timeout_s: float = 180.0) -> float:
        """Start the CMD on ``port``; seconds until it answered the gRPC health check."""
        command = [word if word != "3030" else str(port) for word in self.cmd]
        command = [word if word != "0.0.0.0" else "127.0.0.1" for word in command]
        env = {**self.environment(), "KUSTO_SINK_CONFIG": str(EXAMPLE_SETTINGS)}
        # Not from the copied sources: the installed package must be what loads.
        server = subprocess.Popen(command, cwd=tempfile.gettempdir(), env=env)
        began = time.monotonic()
        try:
            while time.monotonic() - began < timeout_s:
                if server.poll() is not None:
                    raise RuntimeError(f"code server exited with {server.returncode}")
                check = [str(self.venv / "bin" / "dagster"), "api", "grpc-health-check"]
                answer = subprocess.run(
                    [*check, "--port", str(port)], env=env, capture_output=True, check=False
                )
                if answer.returncode == 0:
                    return time.monotonic() - began
                time.sleep(2)
            raise RuntimeError(f"code server did not answer on port {port} in {timeout_s:.0f}s")
        finally:
            server.terminate()
            server.wait(30)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _expand(word: str, env: dict[str, str]) -> str:
    for key, value in env.items():
        word = word.replace(f"${key}", value).replace(f"${{{key}}}", value)
    return word


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=25300)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="kusto-sink-image-"))
    build = Build(workdir)
    began = time.monotonic()
    for step in parse(REPO / "deploy" / "Dockerfile"):
        say(f"{step.instruction} {step.argument[:70]}")
        say(f"    {build.apply(step)}")
    seconds = build.serve(options.port)
    say(
        f"code server answered after {seconds:.1f}s; build and start took "
        f"{time.monotonic() - began:.0f}s (workdir {workdir})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
