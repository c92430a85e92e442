"""torch's threads follow how busy other programs keep this worker's cores.

torch's OpenMP threads meet at the end of every parallel region. When another program takes one
of the cores, the thread that shares it finishes late and the rest wait for it: diarizing 5
minutes of AMI on 2 cores took 5.1 s alone, 15.7 s with 2 threads beside one busy loop, and
6.8 s with 1 thread beside it (bench/bench_threads.py, docs/benchmarks.md). So while a stage
runs, a worker re-measures every second how many of its cores other programs use and runs torch
on its share of the cores less those (never fewer than one, never more than its share).
CTranslate2 (transcribing, Whisper alignment) loses little beside a busy loop (1.2x) and keeps
its threads. Linux only (/proc/stat); elsewhere nothing changes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two measurements
# A measurement older than this (the worker sat idle between jobs) is only a new starting point.
STALE = 10.0
# /proc/stat fields (after the cpu name) that count as busy: user, nice, system, irq, softirq,
# steal; idle and iowait are not.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds(stat: str, cpus: set[int]) -> float:
    """CPU seconds spent busy on `cpus`, from the text of /proc/stat."""
    total = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = rest.split()
        total += sum(int(values[i]) for i in _BUSY_FIELDS if i < len(values))
    return total / _TICK


def _machine_busy(cpus: set[int]) -> float | None:
    try:
        return busy_seconds(Path("/proc/stat").read_text(), cpus)
    except (OSError, ValueError):
        return None


def _usable_cpus() -> set[int]:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere /proc/stat is absent too
    return set(affinity(0)) if affinity else set(range(os.cpu_count() or 1))


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _set_torch_threads(count: int) -> None:
    """Set torch's count if torch is loaded; stages that need torch import it, this never does."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)


class ThreadGovernor:
    """Call update() often (each progress report); it acts at most once per INTERVAL."""

    def __init__(
        self,
        share: int,
        cpus: set[int] | None = None,
        machine_busy: Callable[[set[int]], float | None] = _machine_busy,
        own: Callable[[], float] = _own_seconds,
        clock: Callable[[], float] = time.monotonic,
        apply: Callable[[int], None] = _set_torch_threads,
    ) -> None:
        self.cpus = cpus if cpus is not None else _usable_cpus()
        self.share = max(1, min(share, len(self.cpus)))
        self.threads = self.share
        self._machine_busy, self._own, self._clock, self._apply = machine_busy, own, clock, apply
        self._last: tuple[float, float, float] | None = None

    def update(self) -> int:
        """The thread count now in force (changed if the last INTERVAL says so)."""
        now = self._clock()
        if self._last is not None and now - self._last[0] < INTERVAL:
            return self.threads
        busy = self._machine_busy(self.cpus)
        if busy is None:
            return self.threads
        own = self._own()
        if self._last is not None and now - self._last[0] <= STALE:
            then, busy_then, own_then = self._last
            others = max(0.0, (busy - busy_then) - (own - own_then)) / (now - then)
            # Another program counts as a core once it keeps more than half of one busy.
            free = len(self.cpus) - int(others + 0.5)
            wanted = max(1, min(self.share, free))
            if wanted != self.threads:
                log.info(
                    "other programs use %.1f cores: torch threads %d -> %d",
                    others,
                    self.threads,
                    wanted,
                )
                self.threads = wanted
            # Every time, not only on a change: torch may have been imported since the last.
            self._apply(wanted)
        self._last = (now, busy, own)
        return self.threads
