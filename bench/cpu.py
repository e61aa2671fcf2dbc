"""CPU seconds each part of the machine spent while one measured run ran.

On a 2-core box the stack's servers compete with the sink for the same cores, so a run's
wall time is read against where the CPU went: the measuring process and its children (the
limit's loop, the in-process sink; a drain's process tree is sampled by bench.procs
instead) and each server of the local stack (Linux ``/proc``; threads are counted with
their process).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from bench.procs import process_cpu_s
from devstack.process import read_running
from devstack.stack import StackConfig, stages


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class CpuMeter:
    """Use as a context manager around one run; ``seconds`` then maps part → CPU seconds."""

    stack: StackConfig
    seconds: dict[str, float] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        sample = {"measured": _own_cpu_s()}
        for stage in stages(self.stack):
            for server in stage:
                running = read_running(self.stack.run_dir, server.name)
                if running is None:
                    continue
                with contextlib.suppress(OSError):
                    sample[server.name] = process_cpu_s(running.pid)
        return sample

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.seconds = {
            part: round(end[part] - self._start[part], 2) for part in end if part in self._start
        }
