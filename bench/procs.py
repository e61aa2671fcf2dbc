"""Peak resident memory and CPU time of a process and of every process it starts (``/proc``).

A sampler thread walks the process tree every ``interval_s`` and keeps, per process, the
largest ``VmHWM`` (the kernel's own high-water mark of resident memory) and the last CPU
time it saw. A process that lives shorter than one interval can be missed; Dagster's step
processes live seconds. (A parent's rusage would miss them: forked step processes are the
children of a forkserver that nobody waits for.)
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessPeak:
    pid: int
    command: str
    peak_rss_mb: float
    cpu_s: float = 0.0


def _status(pid: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` (its threads included); OSError once gone."""
    stat = (_PROC / str(pid) / "stat").read_text()
    # Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name in field 2 may hold spaces and parentheses: split after its end.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _command(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    return " ".join(words)[:160]


@dataclass
class TreeSampler:
    """Samples the tree below ``root`` until stopped; use as a context manager."""

    root: int
    interval_s: float = 0.2
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        tree = _children()
        todo = [self.root]
        while todo:
            pid = todo.pop()
            todo += tree.get(pid, [])
            try:
                hwm = _status(pid).get("VmHWM", "0 kB")
                cpu = process_cpu_s(pid)
            except OSError:
                continue
            mb = int(hwm.split()[0]) / 1024
            known = self.peaks.get(pid)
            if known is None:
                known = self.peaks[pid] = ProcessPeak(pid, _command(pid), mb)
            known.peak_rss_mb = max(known.peak_rss_mb, mb)
            known.cpu_s = max(known.cpu_s, cpu)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def cpu_s(self) -> float:
        """CPU seconds of the whole tree, as last sampled."""
        return sum(peak.cpu_s for peak in self.peaks.values())

    def by_role(self) -> dict[str, float]:
        """Largest peak per role: the drain itself, Dagster step processes, other children."""
        roles: dict[str, float] = {}
        for peak in self.peaks.values():
            role = role_of(peak.command, peak.pid == self.root)
            roles[role] = max(roles.get(role, 0.0), peak.peak_rss_mb)
        return roles


def role_of(command: str, is_root: bool) -> str:
    if is_root:
        return "drain"
    if (
        "multiprocess_executor_step_process" in command
        or "dagster" in command
        and "step" in command
    ):
        return "step"
    if "multiprocessing" in command or "spawn_main" in command:
        return "step"
    return "other"
