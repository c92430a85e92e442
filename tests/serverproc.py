"""The real server as a subprocess, for tests that kill, restart or drive it from outside."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    def __init__(
        self, data_dir: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = port or free_port()
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            str(ROOT / "app.py"),
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the whole process group (server and its workers) and wait."""
        assert self.proc is not None
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if sig != signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)


def running_plumbing_server(
    folder: Path, *args: str, stage_seconds: float = 0.5
) -> Iterator[ServerProcess]:
    """A module fixture's body: a plumbing-pipeline server for the tests of one module."""
    server = ServerProcess(
        folder / "data",
        "--pipeline",
        "plumbing",
        *args,
        env={"TRANSCRIBER_PLUMBING_STAGE_SECONDS": str(stage_seconds)},
    )
    server.start()
    yield server
    server.stop()


Switch = Callable[[str], None]


def running_proxy(upstream: str, log_path: Path) -> Iterator[tuple[str, Switch]]:
    """tests/pageproxy.py in front of `upstream`: (its url, a switch for WebSocket upgrades:
    "allow", "403", "502" or "freeze")."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(ROOT / "tests" / "pageproxy.py"), "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--upstream", upstream], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the proxy did not start"
                time.sleep(0.05)

        def switch(websocket: str) -> None:
            request = urllib.request.Request(
                f"{url}/__proxy__/websocket", data=websocket.encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.read().decode() == websocket

        try:
            yield url, switch
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
