"""Mixed load on the real server (plumbing pipeline): watchers, long-pollers and uploads at once.

TASKS tasks are created empty (two-step upload), then watched by WS_CLIENTS WebSocket clients
(each subscribed to every task) and POLLERS long-pollers (each following every task with
GET /api/tasks/{id}?wait=25&since=<seq>). Their audio is then PUT and they run to completion
one after another, while UPLOADS small WAV files are POSTed (multipart) alongside.
Checks: no errors anywhere; every client saw every task's final state, seqs strictly increasing.
Reports: server CPU ((utime+stime) delta / wall, main process), peak RSS sampled every 50 ms,
and delivery latency (receipt - `updated_at`) for WebSocket and long-poll.

    .venv/bin/python bench/bench_load.py [--ws-clients 200] [--pollers 50] [--tasks 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    TERMINAL,
    CpuMeter,
    HealthProbe,
    LoopLag,
    RssSampler,
    Server,
    hwm,
    iso_seconds,
    log_problems,
    machine_note,
    mib,
    percentile,
    plumbing_args,
    plumbing_env,
    raise_nofile,
    tone_wav,
    tree_cpu_seconds,
)

CONNECT_CONCURRENCY = 25


@dataclass
class Watch:
    """What one client saw: seqs and final stage per task, latencies, errors."""

    seqs: dict[str, list[int]] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def see(self, snap: dict[str, Any], received: float, fresh: bool) -> None:
        self.seqs.setdefault(snap["id"], []).append(snap["seq"])
        if fresh:
            self.latencies.append(received - iso_seconds(snap["updated_at"]))
        if snap["stage"] in TERMINAL:
            self.final[snap["id"]] = snap["stage"]


async def ws_client(
    session: aiohttp.ClientSession,
    url: str,
    task_ids: list[str],
    gate: asyncio.Semaphore,
    subscribed: asyncio.Queue[None],
    deadline: float,
) -> Watch:
    watch = Watch()
    caught_up: set[str] = set()
    try:
        async with gate:
            ws = await session.ws_connect(f"{url}/api/ws")
        async with ws:
            for task_id in task_ids:
                await ws.send_json({"type": "subscribe", "task_id": task_id})
            while len(watch.final) < len(task_ids) and time.monotonic() < deadline:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                if msg.type != aiohttp.WSMsgType.TEXT:
                    watch.errors.append(f"ws closed: {msg.type.name} {ws.close_code}")
                    break
                received = time.time()
                message = json.loads(msg.data)
                if message["type"] == "error":
                    watch.errors.append(f"ws error: {message['error']['code']}")
                elif message["type"] == "task":
                    snap = message["task"]
                    watch.see(snap, received, snap["id"] in caught_up)
                    if snap["id"] not in caught_up:
                        caught_up.add(snap["id"])
                        if len(caught_up) == len(task_ids):
                            subscribed.put_nowait(None)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        watch.errors.append(f"ws: {type(exc).__name__}: {exc}")
    if len(caught_up) < len(task_ids):
        subscribed.put_nowait(None)  # never subscribed: let the run go on without it
    return watch


async def poller(
    url: str, task_ids: list[str], started: asyncio.Queue[None], deadline: float
) -> Watch:
    """One client following every task by long-poll, on its own keep-alive connections."""
    watch = Watch()
    timeout = aiohttp.ClientTimeout(total=45)
    connector = aiohttp.TCPConnector(limit=len(task_ids))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(
            *(_follow_poll(session, url, t, watch, started, deadline) for t in task_ids)
        )
    return watch


async def _follow_poll(
    session: aiohttp.ClientSession,
    url: str,
    task_id: str,
    watch: Watch,
    started: asyncio.Queue[None],
    deadline: float,
) -> None:
    """Plain GET first, then long-polls from the seq seen; `started` hears once per task."""
    try:
        await _poll_loop(session, url, task_id, watch, started, deadline)
    finally:
        if task_id not in watch.seqs:
            started.put_nowait(None)  # never got going: let the run go on without it


async def _poll_loop(
    session: aiohttp.ClientSession,
    url: str,
    task_id: str,
    watch: Watch,
    started: asyncio.Queue[None],
    deadline: float,
) -> None:
    since: int | None = None
    while time.monotonic() < deadline and task_id not in watch.final:
        query = "" if since is None else f"?wait=25&since={since}"
        try:
            async with session.get(f"{url}/api/tasks/{task_id}{query}") as resp:
                received = time.time()
                if resp.status != 200:
                    watch.errors.append(f"poll: HTTP {resp.status}")
                    return
                snap = await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            watch.errors.append(f"poll: {type(exc).__name__}: {exc}")
            return
        if since is None:
            started.put_nowait(None)
        if since is None or snap["seq"] > since:
            watch.see(snap, received, since is not None)
            since = snap["seq"]


async def upload(session: aiohttp.ClientSession, url: str, body: bytes, errors: list[str]) -> None:
    form = aiohttp.FormData()
    form.add_field("language", "en")
    form.add_field("file", body, filename="small.wav", content_type="audio/wav")
    try:
        async with session.post(f"{url}/api/tasks", data=form) as resp:
            if resp.status != 201:
                errors.append(f"upload: HTTP {resp.status} {await resp.text()}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        errors.append(f"upload: {type(exc).__name__}: {exc}")


async def run(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    url = server.url
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        task_ids = []
        for index in range(args.tasks):
            async with session.post(f"{url}/api/tasks", json={"filename": f"t{index}.wav"}) as r:
                task_ids.append((await r.json())["id"])
        deadline = time.monotonic() + args.tasks * 3 * args.stage_seconds + 180
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        subscribed: asyncio.Queue[None] = asyncio.Queue()
        ws_watchers = [
            asyncio.create_task(ws_client(session, url, task_ids, gate, subscribed, deadline))
            for _ in range(args.ws_clients)
        ]
        started: asyncio.Queue[None] = asyncio.Queue()
        pollers = [
            asyncio.create_task(poller(url, task_ids, started, deadline))
            for _ in range(args.pollers)
        ]
        for _ in range(args.ws_clients):
            await asyncio.wait_for(subscribed.get(), 120)
        for _ in range(args.pollers * args.tasks):
            await asyncio.wait_for(started.get(), 120)

        audio, small = tone_wav(2.0), tone_wav(args.upload_seconds)
        cpu = CpuMeter(server.pid)
        tree0 = tree_cpu_seconds(server.pid)
        lag, probe = LoopLag(), HealthProbe(url)
        with RssSampler(server.pid, 0.05) as sampler:
            for task_id in task_ids:
                async with session.put(f"{url}/api/tasks/{task_id}/audio", data=audio) as r:
                    assert r.status == 201, await r.text()
            upload_errors: list[str] = []
            uploads = []
            for _ in range(args.uploads):  # spread over the run, not all in one burst
                uploads.append(asyncio.create_task(upload(session, url, small, upload_errors)))
                await asyncio.sleep(args.upload_gap)
            await asyncio.gather(*uploads)
            watches = await asyncio.gather(*ws_watchers)
            polls = await asyncio.gather(*pollers)
            cpu_s, wall, share = cpu.read()
            tree = tree_cpu_seconds(server.pid) - tree0
        loops = (lag.take(), probe.take())
        await lag.stop()
        await probe.stop()
    return {
        "task_ids": task_ids,
        "ws": watches,
        "polls": polls,
        "upload_errors": upload_errors,
        "cpu": (cpu_s, wall, share),
        "tree_cpu": tree,
        "peak": sampler.peak,
        "loops": loops,
    }


def check(watches: list[Watch], task_ids: list[str]) -> tuple[int, list[str]]:
    """(clients that saw every final state in order, all problems)."""
    complete, problems = 0, []
    for watch in watches:
        problems.extend(watch.errors)
        ordered = all(
            all(b > a for a, b in itertools.pairwise(watch.seqs.get(t, []))) for t in task_ids
        )
        if not ordered:
            problems.append("seqs not strictly increasing")
        finals = all(watch.final.get(t) == "complete" for t in task_ids)
        complete += finals and ordered
    return complete, problems


def report(args: argparse.Namespace, result: dict[str, Any], server: Server, note: str) -> None:
    ids = result["task_ids"]
    ws_ok, ws_problems = check(result["ws"], ids)
    poll_ok, poll_problems = check(result["polls"], ids)
    cpu_s, wall, share = result["cpu"]
    print(f"machine: {note}")
    print(
        f"{args.tasks} tasks ({args.stage_seconds:g} s per stage, 1 worker), {args.ws_clients} "
        f"WebSocket clients, {args.pollers} long-pollers (each on every task), {args.uploads} "
        f"uploads of a {args.upload_seconds:g} s WAV"
    )
    print(
        f"  WebSocket clients that saw every final state, seqs increasing: {ws_ok} of "
        f"{args.ws_clients}; problems: {_count(ws_problems)}"
    )
    print(
        f"  long-pollers that saw every final state, seqs increasing: {poll_ok} of "
        f"{args.pollers}; problems: {_count(poll_problems)}"
    )
    print(
        f"  uploads: {args.uploads - len(result['upload_errors'])} of {args.uploads} answered "
        f"201; problems: {_count(result['upload_errors'])}"
    )
    errors = len(ws_problems) + len(poll_problems) + len(result["upload_errors"])
    print(f"  errors in all: {errors}")
    print(f"  latency WebSocket: {_lat([x for w in result['ws'] for x in w.latencies])}")
    print(f"  latency long-poll: {_lat([x for w in result['polls'] for x in w.latencies])}")
    print(
        f"  server (main process): CPU {cpu_s:.1f} s over {wall:.1f} s = {share:.0%} of one core; "
        f"peak RSS {mib(result['peak'])} (VmHWM {mib(hwm(server.pid))})"
    )
    tree = result["tree_cpu"]
    print(f"  server with its worker processes: CPU {tree:.1f} s = {tree / wall:.0%} of one core")
    client_lag, health = result["loops"]
    print(
        f"  busy loops: this client process late to wake by up to {client_lag:.2f} s; "
        f"GET /api/health answered in up to {health:.2f} s"
    )
    print(f"  server log warnings/errors: {log_problems(server.log) or 'none'}")


def _count(problems: list[str]) -> str:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p] = counts.get(p, 0) + 1
    return ", ".join(f"{n} x {p}" for p, n in counts.items()) or "none"


def _lat(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms, default=float('nan')):.1f} ms (n={len(ms)})"
    )


async def main_async(args: argparse.Namespace) -> int:
    raise_nofile(4096)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_name:
        env = plumbing_env(args.stage_seconds)
        with Server(Path(tmp_name), *plumbing_args(), env=env, nofile=4096) as server:
            note = machine_note()
            result = await run(args, server)
            report(args, result, server, note)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--ws-clients", type=int, default=200)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--upload-seconds", type=float, default=10.0, help="length of each WAV")
    parser.add_argument("--upload-gap", type=float, default=0.5, help="seconds between uploads")
    parser.add_argument("--stage-seconds", type=float, default=1.5)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
