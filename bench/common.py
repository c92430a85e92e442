"""Shared pieces of the server benchmarks: the server as a subprocess, /proc readings, WAV bytes.

Everything talks to 127.0.0.1 only. Memory and CPU come from /proc/<pid>/status and
/proc/<pid>/stat (Linux), so no extra packages are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TERMINAL = ("complete", "failed", "cancelled")
WORK_STAGES = ("queued", "transcribing", "aligning", "diarizing", "complete")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted`; returns the soft limit now set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- /proc ---------------------------------------------------------------------------------------


def status_kib(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss(pid: int) -> int:
    """Resident set size in bytes."""
    return status_kib(pid, "VmRSS") * 1024


def hwm(pid: int) -> int:
    """Peak resident set size since the process started, in bytes."""
    return status_kib(pid, "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (its threads included), in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, their children, and so on (the server's workers)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                found.extend(kids)
                queue.extend(kids)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and every live descendant."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            total += cpu_seconds(each)
    return total


class RssSampler:
    """Samples a process's RSS every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = rss(self.pid)
            except (OSError, KeyError):
                return
            self.peak = max(self.peak, value)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class CpuMeter:
    """CPU time of a process over a stretch of wall time: (utime+stime delta) / wall."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = cpu_seconds(pid)
        self.wall0 = time.monotonic()

    def read(self) -> tuple[float, float, float]:
        """(cpu seconds, wall seconds, share of one core)."""
        cpu = cpu_seconds(self.pid) - self.cpu0
        wall = time.monotonic() - self.wall0
        return cpu, wall, cpu / wall if wall else 0.0


# -- event-loop lag ----------------------------------------------------------------------------


class LoopLag:
    """The longest this event loop was late to wake a 50 ms sleeper (how busy the client is)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            self.worst = max(self.worst, loop.time() - before - 0.05)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return round(worst, 3)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class HealthProbe:
    """GET /api/health every 0.25 s: the worst answer time tells how busy the server loop is."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                begin = time.monotonic()
                async with session.get(f"{self.url}/api/health") as resp:
                    await resp.read()
                self.worst = max(self.worst, time.monotonic() - begin)
                await asyncio.sleep(0.25)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# -- the server ----------------------------------------------------------------------------------


class Server:
    """`app.py` in its own process group, in a data dir under `tmp`, on a free local port."""

    def __init__(
        self,
        tmp: Path,
        *args: str,
        env: dict[str, str] | None = None,
        nofile: int | None = None,
        cmd: Sequence[str] | None = None,
        name: str = "server",
        root: Path = ROOT,
    ) -> None:
        self.root = root
        self.port = free_port()
        self.data_dir = tmp / f"{name}-{self.port}"
        self.log = tmp / f"{name}-{self.port}.log"
        self.cmd = list(cmd) if cmd is not None else self._serve_cmd(args)
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        if root != ROOT:
            # Another checkout's package first on the path, ahead of this venv's editable one.
            self.env["PYTHONPATH"] = str(root)
        self.nofile = nofile
        self.proc: subprocess.Popen[bytes] | None = None

    def _serve_cmd(self, args: Sequence[str]) -> list[str]:
        return [
            sys.executable,
            str(self.root / "app.py"),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *args,
        ]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _limits(self) -> None:
        if self.nofile is not None:
            raise_nofile(self.nofile)

    def start(self, ready_path: str = "/api/health", timeout: float = 60.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [c.replace("{port}", str(self.port)) for c in self.cmd],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._limits if self.nofile else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def open_files_limit(self) -> int:
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        return -1

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL for the process group (the server's worker processes)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def plumbing_args(*extra: str) -> list[str]:
    return ["--pipeline", "plumbing", *extra]


def plumbing_env(stage_seconds: float) -> dict[str, str]:
    return {"TRANSCRIBER_PLUMBING_STAGE_SECONDS": str(stage_seconds)}


def settle_rss(pid: int, seconds: float = 1.0, interval: float = 0.1) -> int:
    """The smallest RSS seen over a short quiet stretch (after allocations have settled)."""
    values = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values.append(rss(pid))
        time.sleep(interval)
    return min(values) if values else rss(pid)


# -- audio ---------------------------------------------------------------------------------------


def wav_header(data_bytes: int, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    """A 44-byte PCM WAV header announcing `data_bytes` of samples."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH", 16, 1, channels, rate, rate * channels * width, channels * width, width * 8
        )
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def tone_wav(seconds: float = 2.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    """A real, decodable WAV file: a sine tone."""
    count = int(seconds * rate)
    samples = struct.pack(
        f"<{count}h",
        *(int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)),
    )
    return wav_header(len(samples), rate) + samples


# -- numbers -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def iso_seconds(stamp: str) -> float:
    """Epoch seconds of a snapshot's `updated_at` (ISO 8601, ms, trailing Z)."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def emit(prefix: str, payload: Any) -> None:
    """One line for a parent process to read: PREFIX {json}."""
    sys.stdout.write(f"{prefix} {json.dumps(payload)}\n")
    sys.stdout.flush()


def log_problems(path: Path, limit: int = 5) -> list[str]:
    """The most frequent WARNING/ERROR lines of a server log (timestamps dropped), with counts."""
    counts: dict[str, int] = {}
    if not path.exists():
        return []
    for line in path.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line or "Traceback" in line:
            key = line.split(" ", 2)[-1][:160]
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return [f"{n} x {text}" for text, n in ranked]


def machine_note() -> str:
    """Load average and core count: other work on the machine skews absolute numbers."""
    one, five, _ = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} (1 min), {five} (5 min) on {os.cpu_count()} cores"
