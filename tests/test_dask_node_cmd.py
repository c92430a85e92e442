"""`transcriber serve --executor dask` and `transcriber node` as real subprocesses, over TLS:
a node on the shared data folder and one fetching over HTTP, refused nodes (token, version),
a coordinator killed with SIGKILL while a node runs its job, and a node that will not send its
token over plain http to another machine unless told."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, Worker
from distributed.core import rpc
from distributed.protocol.pickle import dumps

from transcriber.node.plugin import node_info
from transcriber.node.tls import security
from transcriber.node.wire import NODE_INFO, RESOURCE

from .conftest import tone_wav
from .serverproc import ROOT, ServerProcess, free_port

TOKEN = "cluster-node-token"
# A node whose transcriber is another version, otherwise the same code.
OTHER_VERSION = (
    "import sys, transcriber; transcriber.__version__ = '0.0.0-other';"
    " from transcriber.cli import main; main(sys.argv[1:])"
)


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.certs = folder / "certs"
        subprocess.run(
            [sys.executable, "-m", "transcriber", "certs", str(self.certs)], check=True, cwd=ROOT
        )
        self.port = free_port()
        self.server = self._server()
        self.nodes: list[subprocess.Popen[bytes]] = []

    def _server(self) -> ServerProcess:
        return ServerProcess(
            self.folder / "data",
            *("--pipeline", "plumbing", "--executor", "dask", "--tls-dir", str(self.certs)),
            *("--scheduler-host", "127.0.0.1", "--scheduler-port", str(self.port)),
            *("--node-token", TOKEN),
            env={"TRANSCRIBER_PLUMBING_STAGE_SECONDS": "1.5"},
        )

    def node(self, name: str, *args: str, token: str = TOKEN, code: str | None = None) -> Path:
        log = self.folder / f"node-{name}.log"
        start = ["-c", code, "node"] if code else ["-m", "transcriber", "node"]
        cmd = [
            sys.executable,
            *start,
            *("--scheduler", f"tls://127.0.0.1:{self.port}", "--tls-dir", str(self.certs)),
            *("--node-token", token, "--slots", "1", "--device", "cpu", "--name", name),
            *("--cache-dir", str(self.folder / f"cache-{name}"), *args),
        ]
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.nodes.append(proc)
        return log

    def submit(self) -> str:
        request = urllib.request.Request(
            f"{self.server.url}/api/tasks?filename=tone.wav",
            data=tone_wav(),
            method="POST",
            headers={"Content-Type": "audio/wav"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            task_id: str = json.load(answer)["id"]
        return task_id

    def task(self, task_id: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.server.url}/api/tasks/{task_id}", timeout=30) as a:
            task: dict[str, Any] = json.load(a)
        return task

    def close(self) -> None:
        for proc in self.nodes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.nodes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.server.proc is not None and self.server.proc.poll() is None:
            self.server.stop()


def eventually(check: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    made.server.start()
    try:
        yield made
    finally:
        made.close()


def test_shared_and_http_nodes_run_jobs_and_bad_nodes_are_refused(cluster: Cluster) -> None:
    shared = cluster.node("shared")
    http = cluster.node("http", "--audio", "http", "--coordinator-url", cluster.server.url)
    log = cluster.server.log
    eventually(lambda: log.read_text().count("joined: 1 slots") == 2, what="two nodes joined")
    ids = [cluster.submit() for _ in range(4)]
    for task_id in ids:
        done = eventually(lambda t=task_id: _ended(cluster.task(t)), what=f"task {task_id}")
        assert done["stage"] == "complete", done["error"]
    ran = {name: path.read_text() for name, path in (("shared", shared), ("http", http))}
    # Each node ran at least one of them; the http node fetched its audio over HTTP.
    assert all(any(f"task {t} attempt 1" in text for t in ids) for text in ran.values())
    assert "audio fetched (96044 bytes)" in ran["http"]
    assert "audio fetched" not in ran["shared"]

    wrong = cluster.node("wrong", token="not-the-token")
    other = cluster.node("other", code=OTHER_VERSION)
    assert cluster.nodes[-2].wait(120) == 2 and cluster.nodes[-1].wait(120) == 2
    assert "refused by the coordinator: it presented a wrong node token" in wrong.read_text()
    other_log = other.read_text()
    assert "this node will be refused: its versions differ" in other_log
    assert "transcriber 0.1.0 here, 0.0.0-other there" in other_log
    server_log = log.read_text()
    assert "(wrong) refused: it presented a wrong node token" in server_log
    assert "(other) refused: its versions differ" in server_log


def test_coordinator_killed_mid_job_leaves_no_orphan_and_resumes(cluster: Cluster) -> None:
    node_log = cluster.node("only")
    eventually(lambda: "joined: 1 slots" in cluster.server.log.read_text(), what="node joined")
    task_id = cluster.submit()
    eventually(lambda: cluster.task(task_id)["stage"] == "aligning", what="aligning")
    pid = int(
        node_log.read_text().split(f"task {task_id} attempt 1: running in process ")[1].split()[0]
    )
    cluster.server.stop(signal.SIGKILL)
    # The node's worker lost its scheduler, closed, and its plugin killed the job's child.
    eventually(lambda: not _alive(pid), timeout=60, what="the orphaned child to die")
    cluster.server = cluster._server()
    cluster.server.start()
    done = eventually(lambda: _ended(cluster.task(task_id)), what="the resumed task")
    assert done["stage"] == "complete" and done["attempt"] == 2
    assert f"task {task_id} attempt 2: running" in node_log.read_text()


def _node(folder: Path, url: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """A node with --audio http and `url`; its scheduler, a loopback port nobody listens on."""
    log = folder / f"node-{len(list(folder.glob('node-*')))}.log"
    cmd = [
        *(sys.executable, "-m", "transcriber", "node", "--node-token", TOKEN, "--slots", "1"),
        *("--scheduler", f"tls://127.0.0.1:{free_port()}", "--tls-dir", str(folder / "certs")),
        *("--device", "cpu", "--cache-dir", str(folder / "cache")),
        *("--audio", "http", "--coordinator-url", url, *args),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT), log


def test_a_node_sends_its_token_in_clear_only_on_loopback_or_when_told(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "transcriber", "certs", str(tmp_path / "certs")],
        check=True,
        cwd=ROOT,
    )
    # Refused at start, before a byte is sent.
    for url, says in (
        ("http://10.1.2.3:8000", "is plain http to another machine"),
        ("http://coordinator.lab.example", "is plain http to another machine"),
        ("coordinator.lab.example:8000", "must be an https:// (or http://) URL"),
    ):
        refused, log = _node(tmp_path, url)
        try:
            assert refused.wait(60) == 2
        finally:
            refused.kill()  # only if the node went on to run
        assert log.read_text().startswith("transcriber node: --coordinator-url ")
        assert says in log.read_text()
    # On loopback, or to another machine with --insecure: the node starts, and says so.
    for url, args in (("http://127.0.0.1:8000", ()), ("http://10.1.2.3:8000", ("--insecure",))):
        started, log = _node(tmp_path, url, *args)
        try:
            eventually(lambda p=log: "Waiting to connect to" in p.read_text(), 60, "the worker")
        finally:
            started.terminate()
            started.wait(30)
        assert f"the node token and the audio go to {url} unencrypted" in log.read_text()


def _ended(task: dict[str, Any]) -> dict[str, Any] | None:
    return task if task["stage"] in ("complete", "failed", "cancelled") else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_node_credential_is_not_a_client_of_the_cluster(cluster: Cluster) -> None:
    node_log = cluster.node("only")
    log = cluster.server.log
    joined = eventually(
        lambda: re.search(r"node (tls://\S+) \(only\) joined", log.read_text()), what="joined"
    )
    first = cluster.submit()
    assert eventually(lambda: _ended(cluster.task(first)), what="a job")["stage"] == "complete"
    ran = cluster.folder / "ran"
    refused = asyncio.run(_as_a_node(cluster, joined.group(1), ran))
    # A client with the node's certificate is refused as it registers, so it can neither
    # submit nor run anything; the function sent straight to the scheduler (what
    # run_on_scheduler sends) is refused, and the node's worker closes the connection of
    # anyone but the coordinator (Client.run reaches nodes through the scheduler). None ran.
    assert refused["client"].startswith("TimeoutError")
    assert refused["scheduler"] == (
        "PermissionError: a transcriber node may not call 'run_function' on the scheduler"
    )
    assert refused["worker"].startswith("CommClosedError")
    assert not ran.exists()
    server_log = log.read_text()
    assert "refused 'register-client' from tls://127.0.0.1:" in server_log
    assert "refused a connection from tls://127.0.0.1:" in node_log.read_text()
    # A node's stream to the scheduler carries a worker's messages only, not a client's.
    assert "refused 'cancel-keys' from tls://127.0.0.1:" in server_log
    # The coordinator and its node work on.
    second = cluster.submit()
    assert eventually(lambda: _ended(cluster.task(second)), what="a job")["stage"] == "complete"


async def _as_a_node(cluster: Cluster, worker: str, ran: Path) -> dict[str, str]:
    """What a holder of a node's files gets when it asks for more than a node may."""
    node = security(cluster.certs, "node")
    scheduler = f"tls://127.0.0.1:{cluster.port}"
    refused: dict[str, str] = {}
    try:
        async with Client(scheduler, security=node, asynchronous=True, timeout=3) as client:
            await client.run_on_scheduler(ran.touch)
    except Exception as exc:
        refused["client"] = f"{type(exc).__name__}: {exc}"
    for name, address, op in (("scheduler", scheduler, "run_function"), ("worker", worker, "run")):
        async with rpc(address, connection_args=node.get_connection_args("client")) as server:
            try:
                await getattr(server, op)(function=dumps(ran.touch))
            except Exception as exc:
                refused[name] = f"{type(exc).__name__}: {exc}"
    await _rogue_node(cluster, scheduler, node)
    return refused


async def _rogue_node(cluster: Cluster, scheduler: str, node: Any) -> None:
    """A node that, once registered, sends a client's message (cancel a job) on its stream."""
    info = {NODE_INFO: functools.partial(node_info, TOKEN, "shared")}
    async with Worker(
        scheduler,
        security=node,
        nthreads=1,
        resources={RESOURCE: 1},
        startup_information=info,
        dashboard=False,
        name="rogue",
    ) as worker:
        message = {"op": "cancel-keys", "keys": ["transcriber-job-x-1"], "client": "x"}
        worker.batched_stream.send(message)
        for _ in range(300):
            if "refused 'cancel-keys'" in cluster.server.log.read_text():
                break
            await asyncio.sleep(0.1)
