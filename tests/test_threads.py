"""torch's thread count follows how busy other programs keep the worker's cores (threads.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from transcriber.worker import process as worker
from transcriber.worker.job import Job
from transcriber.worker.threads import ThreadGovernor, busy_seconds

STAT = """cpu  500 0 300 9000 100 0 0 0 0 0
cpu0 100 0 100 4000 50 10 10 5 0 0
cpu1 400 0 200 5000 50 0 0 0 0 0
intr 12345
"""


def test_busy_seconds_reads_the_cpus_asked_for() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    # user + nice + system + irq + softirq + steal; idle and iowait left out
    assert busy_seconds(STAT, {0}) == pytest.approx(225 / tick)
    assert busy_seconds(STAT, {1}) == pytest.approx(600 / tick)
    assert busy_seconds(STAT, {0, 1}) == pytest.approx(825 / tick)
    assert busy_seconds(STAT, {7}) == 0


class Machine:
    """A clock, the machine's busy seconds and this process's own, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0
        self.busy = 0.0
        self.own = 0.0
        self.applied: int | None = None  # the count last handed to torch

    def run(self, seconds: float, others: float, own: float) -> None:
        """`seconds` pass with other programs on `others` cores and this process on `own`."""
        self.now += seconds
        self.busy += (others + own) * seconds
        self.own += own * seconds

    def governor(self, share: int, cores: int) -> ThreadGovernor:
        return ThreadGovernor(
            share,
            cpus=set(range(cores)),
            machine_busy=lambda cpus: self.busy,
            own=lambda: self.own,
            clock=lambda: self.now,
            apply=self.apply,
        )

    def apply(self, count: int) -> None:
        self.applied = count


# (seconds that pass, cores other programs keep busy, cores this worker uses, threads after)
Steps = list[tuple[float, float, float, int]]
SCENARIOS: dict[str, tuple[int, int, Steps]] = {
    "a busy core takes a thread and gives it back": (
        2,
        2,
        [(1.0, 0.0, 2.0, 2), (1.0, 1.0, 1.3, 1), (1.0, 1.0, 1.0, 1), (1.0, 0.0, 1.0, 2)],
    ),
    "half a core or less is not taken for a core": (
        2,
        2,
        [(2.0, 0.4, 1.6, 2), (2.0, 0.7, 1.3, 1)],
    ),
    # 4 cores, two workers with 2 each: the other worker's 2 busy cores leave this one its 2;
    # one more program takes one; never fewer than one.
    "other workers' shares are already counted in": (
        2,
        4,
        [(1.0, 2.0, 2.0, 2), (1.0, 3.0, 1.0, 1), (1.0, 4.0, 0.5, 1)],
    ),
    # Under a second nothing is measured; a minute idle between jobs decides nothing.
    "once a second, and not across an idle gap": (
        2,
        2,
        [(0.5, 2.0, 0.0, 2), (0.6, 2.0, 0.0, 1), (60.0, 0.0, 0.0, 1), (1.0, 0.0, 2.0, 2)],
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_thread_count_follows_the_other_programs(name: str) -> None:
    share, cores, steps = SCENARIOS[name]
    m = Machine()
    g = m.governor(share=share, cores=cores)
    assert g.update() == share and m.applied is None  # the first call only measures
    handed, since = None, 0.0
    for seconds, others, own, after in steps:
        m.run(seconds, others=others, own=own)
        assert g.update() == after, (seconds, others, own)
        # Each measurement a second or more after the last one hands its count to torch (even
        # an unchanged one: torch may have loaded since); a stale one (an idle gap) does not.
        since += seconds
        if since >= 1.0:
            handed = after if since <= 10.0 else handed
            since = 0.0
        assert m.applied == handed


def test_no_proc_stat_changes_nothing() -> None:
    applied: list[int] = []
    g = ThreadGovernor(2, cpus={0, 1}, machine_busy=lambda cpus: None, apply=applied.append)
    assert g.update() == 2 and g.update() == 2 and applied == []


def test_a_real_busy_loop_takes_a_thread() -> None:
    """The real /proc/stat and a real busy program on this machine's cores."""
    cpus = set(os.sched_getaffinity(0))
    applied: list[int] = []
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # the busy loop starts
        g = ThreadGovernor(len(cpus), apply=applied.append)
        assert g.update() == len(cpus)
        time.sleep(1.5)
        # A core is taken away, and one thread always stays (all there is on one core).
        assert g.update() == 1 if len(cpus) == 1 else g.update() <= len(cpus) - 1
        assert applied and applied[-1] == g.threads
    finally:
        hog.kill()
        hog.wait()


def test_the_worker_reporter_sets_torchs_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = Machine()
    governor = ThreadGovernor(
        2, cpus={0, 1}, machine_busy=lambda cpus: m.busy, own=lambda: m.own, clock=lambda: m.now
    )
    monkeypatch.setattr(worker, "_governor", governor)
    monkeypatch.setattr(worker, "_queue", None)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        job = Job("t", 1, tmp_path / "a.wav", tmp_path, ("diarizing",), {})
        reporter = worker.Reporter(job)
        reporter.start_stage("diarizing")
        reporter(1, "Segmentation 1/10")
        m.run(1.0, others=1.0, own=1.0)
        reporter(2, "Segmentation 2/10")
        assert torch.get_num_threads() == 1
        m.run(1.0, others=0.0, own=1.0)
        reporter(3, "Segmentation 3/10")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_init_takes_the_share_from_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_governor", None)
    monkeypatch.setattr(worker, "_queue", None)
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "false")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set by the operator: it wins
    previous = signal.getsignal(signal.SIGINT)
    try:
        worker.init(None, 2)
        assert worker._governor is not None and worker._governor.share == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        worker.init(None, 2)
    finally:
        signal.signal(signal.SIGINT, previous)
    cores = len(os.sched_getaffinity(0))
    assert worker._governor.share == min(2, cores) and os.environ["OMP_NUM_THREADS"] == "2"
