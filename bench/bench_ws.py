"""WebSocket fan-out and idle connections on the real server (plumbing pipeline).

(a) fan-out: SUBSCRIBERS sockets subscribe to one task before its audio arrives; the task then
    runs through every stage. Delivery latency = receipt time - the snapshot's `updated_at`
    (stamped by the server when the change is made, before it is written to SQLite and
    published; ms resolution; one clock, same machine). Checks that every subscriber saw every
    stage and the final state, with seqs strictly increasing and no duplicates.
(b) memory per idle connection: server RSS with IDLE open sockets (each has had `hello`) minus
    the RSS before, divided by IDLE.
(c) the same IDLE sockets held with a short heartbeat (--heartbeat) for at least 2 periods:
    how many stay open, and how many application heartbeats each one received meanwhile.

Clients run in --procs child processes (the same script with --role), so one client event loop
is not the limit. Open-file limits are raised with setrlimit for the clients and the server.

    .venv/bin/python bench/bench_ws.py [--subscribers 1000] [--idle 10000] [--heartbeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CpuMeter,
    HealthProbe,
    LoopLag,
    RssSampler,
    Server,
    emit,
    iso_seconds,
    log_problems,
    machine_note,
    mib,
    percentile,
    plumbing_args,
    plumbing_env,
    raise_nofile,
    rss,
    settle_rss,
    tone_wav,
)

STAGES = ("queued", "transcribing", "aligning", "diarizing", "complete")
CONNECT_CONCURRENCY = 25
CONNECT_TRIES = 3


# -- client processes ----------------------------------------------------------------------------


async def open_socket(
    session: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse | None:
    """A socket that has received `hello`, or None after CONNECT_TRIES failures."""
    for attempt in range(CONNECT_TRIES):
        try:
            async with gate:
                ws = await session.ws_connect(url, autoping=True, heartbeat=None)
                hello = await ws.receive_json(timeout=30)
            if hello.get("type") == "hello":
                return ws
            await ws.close()
        except (aiohttp.ClientError, TimeoutError, OSError):
            await asyncio.sleep(0.2 * (attempt + 1))
    return None


def _connector() -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=0, force_close=False)


class Countdown:
    """Set when `count` sockets have finished connecting (whether they succeeded or not)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.failed = 0
        self.done = asyncio.Event()
        if count == 0:
            self.done.set()

    def tick(self, ok: bool) -> None:
        self.failed += not ok
        self.left -= 1
        if self.left == 0:
            self.done.set()


async def subscriber_role(args: argparse.Namespace) -> None:
    """Subscribe `count` sockets to one task and record every snapshot until the final one.

    Each socket reads from the moment it opens (so protocol pings are answered at once).
    """
    raise_nofile(args.count + 256)
    url = f"{args.url.replace('http', 'ws', 1)}/api/ws"
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    countdown = Countdown(args.count)
    lag = LoopLag()

    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def one(
        session: aiohttp.ClientSession,
    ) -> tuple[dict[str, Any], list[tuple[float, str]]] | None:
        ws = await open_socket(session, url, gate)
        if ws is not None:
            sockets.append(ws)
            with suppress(aiohttp.ClientError, TimeoutError, OSError):
                first = await _subscribe(ws, args.task)
                countdown.tick(True)
                raw: list[tuple[float, str]] = []
                with suppress(TimeoutError):
                    await asyncio.wait_for(_follow(ws, raw), args.timeout)
                return first, raw
        countdown.tick(False)
        return None

    async with aiohttp.ClientSession(connector=_connector()) as session:
        followers = [asyncio.create_task(one(session)) for _ in range(args.count)]
        await countdown.done.wait()
        emit("READY", {"connected": args.count - countdown.failed, "failed": countdown.failed})
        lag.take()
        cpu0 = time.process_time()
        followed = await asyncio.gather(*followers)
        cpu = time.process_time() - cpu0
        worst_lag = lag.take()
        await lag.stop()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    logs = [parse_follow(args.task, *done) for done in followed if done is not None]
    summary = summarize_follow(logs, countdown.failed)
    emit("RESULT", summary | {"lag": worst_lag, "cpu": cpu})


async def _subscribe(ws: aiohttp.ClientWebSocketResponse, task_id: str) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "task_id": task_id})
    while True:
        message = await ws.receive_json(timeout=30)
        if message.get("type") == "task":
            return dict(message["task"])


TERMINAL_MARKS = tuple(f'"stage": "{stage}"' for stage in ("complete", "failed", "cancelled"))


async def _follow(ws: aiohttp.ClientWebSocketResponse, raw: list[tuple[float, str]]) -> None:
    """Keep (receipt time, text) of every message until a final state; parsed afterwards.

    The loop does as little as it can (no per-receive timeout, no JSON) so the client's own
    work adds little to the latency it measures.
    """
    while True:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        raw.append((time.time(), msg.data))
        if any(mark in msg.data for mark in TERMINAL_MARKS) and '"type": "task"' in msg.data:
            return


def parse_follow(
    task_id: str, first: dict[str, Any], raw: list[tuple[float, str]]
) -> list[tuple[int, str, float]]:
    """(seq, stage, latency in s) per snapshot of the task; the catch-up first, latency NaN."""
    seen = [(first["seq"], first["stage"], math.nan)]
    for received, text in raw:
        message = json.loads(text)
        if message.get("type") != "task" or message["task"]["id"] != task_id:
            continue
        snap = message["task"]
        seen.append((snap["seq"], snap["stage"], received - iso_seconds(snap["updated_at"])))
    return seen


def summarize_follow(logs: list[list[tuple[int, str, float]]], failed: int) -> dict[str, Any]:
    latencies: list[float] = []
    stage_latencies: list[float] = []
    problems: dict[str, int] = {"connect_failed": failed}
    every_seq = ok = 0
    for log in logs:
        seqs = [s for s, _, _ in log]
        stages = [st for _, st, _ in log]
        increasing = all(b > a for a, b in itertools.pairwise(seqs))
        missing = [st for st in STAGES if st not in stages]
        final = stages[-1] == "complete"
        for problem, found in (
            ("seq_not_increasing", not increasing),
            ("missed_stage", bool(missing)),
            ("no_final_state", not final),
        ):
            problems[problem] = problems.get(problem, 0) + found
        ok += increasing and not missing and final
        if seqs == list(range(seqs[0], seqs[-1] + 1)):
            every_seq += 1
        previous = stages[0]
        for _, stage, latency in log[1:]:
            latencies.append(round(latency, 5))
            if stage != previous:
                stage_latencies.append(round(latency, 5))
            previous = stage
    return {
        "subscribers": len(logs),
        "messages": sum(len(log) for log in logs),
        "every_seq": every_seq,
        "ok": ok,
        "last_seq": max((log[-1][0] for log in logs), default=0),
        "problems": problems,
        "latencies": latencies,
        "stage_latencies": stage_latencies,
    }


class Held:
    """One idle socket: application heartbeats received, and why it closed (None while open)."""

    def __init__(self) -> None:
        self.beats = 0
        self.closed: str | None = None

    async def hold(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and '"heartbeat"' in msg.data:
                    self.beats += 1
            self.closed = f"code {ws.close_code}"
        except (aiohttp.ClientError, OSError) as exc:
            # e.g. answering a ping on a connection the server has just dropped
            self.closed = f"{type(exc).__name__}: {exc}"[:80]


async def idle_role(args: argparse.Namespace) -> None:
    """Open `count` sockets, reading each from the moment it opens; hold them until told to stop.

    Heartbeats are counted from MARK (sent once every client is connected) to STOP.
    """
    raise_nofile(args.count + 256)
    url = f"{args.url.replace('http', 'ws', 1)}/api/ws"
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    countdown = Countdown(args.count)
    held: list[Held] = []
    begin = time.monotonic()
    lag = LoopLag()

    async def one(session: aiohttp.ClientSession) -> None:
        ws = await open_socket(session, url, gate)
        countdown.tick(ws is not None)
        if ws is None:
            return
        state = Held()
        held.append(state)
        try:
            await state.hold(ws)
        finally:
            await ws.close()

    async with aiohttp.ClientSession(connector=_connector()) as session:
        sockets = [asyncio.create_task(one(session)) for _ in range(args.count)]
        await countdown.done.wait()
        connected = args.count - countdown.failed
        seconds = time.monotonic() - begin
        emit(
            "READY",
            {
                "connected": connected,
                "failed": countdown.failed,
                "seconds": seconds,
                "lag": lag.take(),
            },
        )
        await _line("MARK", args.timeout)
        lag.take()
        at_mark = [h.beats for h in held]
        open_at_mark = sum(h.closed is None for h in held)
        await _line("STOP", args.timeout)
        hold_lag = lag.take()
        open_now = [(h, m) for h, m in zip(held, at_mark, strict=True) if h.closed is None]
        closed: dict[str, int] = {}
        for h in held:
            if h.closed is not None:
                closed[h.closed] = closed.get(h.closed, 0) + 1
        for socket_task in sockets:
            socket_task.cancel()
        await asyncio.gather(*sockets, return_exceptions=True)
    emit(
        "RESULT",
        {
            "connected": connected,
            "open_at_mark": open_at_mark,
            "open_at_stop": len(open_now),
            "closed": closed,
            "beats_min": min((h.beats - m for h, m in open_now), default=0),
            "beats_max": max((h.beats - m for h, m in open_now), default=0),
            "lag": hold_lag,
        },
    )
    await lag.stop()


async def _line(expected: str, timeout: float) -> None:
    line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), timeout)
    if line.strip() != expected:
        raise RuntimeError(f"expected {expected}, got {line!r}")


# -- the parent ----------------------------------------------------------------------------------


class Clients:
    """Child client processes that talk in lines: READY {...}, RESULT {...}."""

    def __init__(self, role: str, url: str, counts: list[int], timeout: float, *extra: str):
        self.cmds = [
            [
                sys.executable,
                __file__,
                "--role",
                role,
                "--url",
                url,
                "--count",
                str(n),
                "--timeout",
                str(timeout),
                *extra,
            ]
            for n in counts
            if n > 0
        ]
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> Clients:
        for cmd in self.cmds:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=64 * 2**20
            )
            self.procs.append(proc)
        return self

    async def collect(self, prefix: str, timeout: float) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self._one(p, prefix, timeout) for p in self.procs)))

    async def _one(
        self, proc: asyncio.subprocess.Process, prefix: str, timeout: float
    ) -> dict[str, Any]:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
            if not line:
                raise RuntimeError(f"client {proc.pid} exited before {prefix}")
            if line.startswith(prefix.encode() + b" "):
                payload: dict[str, Any] = json.loads(line[len(prefix) + 1 :])
                return payload
        raise TimeoutError(prefix)

    async def tell(self, line: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(line.encode() + b"\n")
            await proc.stdin.drain()

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def request(url: str, method: str, body: bytes | None, ctype: str) -> dict[str, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


async def fan_out(args: argparse.Namespace, tmp: Path, subscribers: int) -> None:
    nofile = subscribers + 1024
    env = plumbing_env(args.stage_seconds)
    with Server(tmp, *plumbing_args(), env=env, nofile=nofile, name="fanout") as server:
        task = request(
            f"{server.url}/api/tasks", "POST", b'{"filename": "tone.wav"}', "application/json"
        )
        timeout = 5 * args.stage_seconds + 120
        clients = Clients(
            "subscriber",
            server.url,
            split(subscribers, min(args.procs, subscribers)),
            timeout,
            "--task",
            task["id"],
        )
        await clients.start()
        try:
            ready = await clients.collect("READY", 180)
            connected = sum(r["connected"] for r in ready)
            cpu = CpuMeter(server.pid)
            probe = HealthProbe(server.url)
            with RssSampler(server.pid) as sampler:
                await asyncio.to_thread(
                    request,
                    f"{server.url}/api/tasks/{task['id']}/audio",
                    "PUT",
                    tone_wav(2.0),
                    "audio/wav",
                )
                results = await clients.collect("RESULT", timeout)
            cpu_s, wall, share = cpu.read()
            health = probe.take()
            await probe.stop()
        finally:
            await clients.close()
    latencies = [x for r in results for x in r["latencies"]]
    stage_lat = [x for r in results for x in r["stage_latencies"]]
    problems: dict[str, int] = {}
    for r in results:
        for key, value in r["problems"].items():
            problems[key] = problems.get(key, 0) + value
    every_seq = sum(r["every_seq"] for r in results)
    print(
        f"(a) fan-out: {connected} of {subscribers} subscribers on one task, "
        f"{min(args.procs, subscribers)} client processes, {args.stage_seconds:g} s per stage"
    )
    print(
        f"    snapshots received: {len(latencies)} (after the catch-up), final seq "
        f"{max(r['last_seq'] for r in results)}"
    )
    print(f"    latency all updates: {_lat(latencies)}")
    print(f"    latency stage changes: {_lat(stage_lat)}")
    print(
        f"    saw every stage and the final state, seqs increasing, no duplicates: "
        f"{sum(r['ok'] for r in results)} of {subscribers}; problems: {problems}"
    )
    print(f"    saw every seq (no progress collapsed): {every_seq} of {connected}")
    print(
        f"    server while the task ran: CPU {cpu_s:.1f} s over {wall:.1f} s ({share:.0%} of a "
        f"core), peak RSS {mib(sampler.peak)}"
    )
    client_cpu = sum(r["cpu"] for r in results)
    print(
        f"    clients' CPU while following: {client_cpu:.1f} s, "
        f"{client_cpu / max(1, len(latencies)) * 1e6:.0f} us per message received; "
        f"server CPU / messages sent: {cpu_s / max(1, len(latencies)) * 1e6:.0f} us"
    )
    print(
        f"    busy loops: clients late to wake by up to {max(r['lag'] for r in results):.2f} s; "
        f"GET /api/health answered in up to {health:.2f} s"
    )


def _lat(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms, default=math.nan):.1f} ms (n={len(ms)})"
    )


async def idle(args: argparse.Namespace, tmp: Path) -> None:
    nofile = args.idle + 1024
    hb = args.heartbeat
    heartbeat_args = plumbing_args("--heartbeat", f"{hb:g}")
    with Server(tmp, *heartbeat_args, nofile=nofile, name="idle") as server:
        limit = server.open_files_limit()
        clients = Clients("idle", server.url, split(args.idle, args.procs), args.hold + 600)
        await _warm_ws(server.url)
        before = settle_rss(server.pid, 2.0)
        begin = time.monotonic()
        probe = HealthProbe(server.url)
        await clients.start()
        try:
            ready = await clients.collect("READY", 300)
            connect_s = time.monotonic() - begin
            probe_connect = probe.take()
            connected = sum(r["connected"] for r in ready)
            await asyncio.sleep(2)
            after = await asyncio.to_thread(settle_rss, server.pid, 2.0)
            cpu = CpuMeter(server.pid)
            with RssSampler(server.pid, 0.25) as sampler:
                await clients.tell("MARK")
                await asyncio.sleep(args.hold)
                await clients.tell("STOP")
                results = await clients.collect("RESULT", 120)
            cpu_s, wall, share = cpu.read()
            probe_hold = probe.take()
        finally:
            await probe.stop()
            await clients.close()
        end_rss = rss(server.pid)
    problems = log_problems(server.log)
    failed = sum(r["failed"] for r in ready)
    per = (after - before) / connected if connected else math.nan
    print(
        f"(b) memory per idle connection: server RSS {mib(before)} -> {mib(after)} with "
        f"{connected} sockets: {per / 1024:.1f} KiB per connection"
    )
    closed: dict[str, int] = {}
    for r in results:
        for key, value in r["closed"].items():
            closed[key] = closed.get(key, 0) + value
    open_at_mark = sum(r["open_at_mark"] for r in results)
    open_at_stop = sum(r["open_at_stop"] for r in results)
    beats_min = min(r["beats_min"] for r in results)
    beats_max = max(r["beats_max"] for r in results)
    print(
        f"(c) idle sockets: {args.idle} asked, {connected} connected in {connect_s:.1f} s "
        f"({failed} failed; {args.procs} client processes; server open-file limit {limit})"
    )
    print(
        f"    held {args.hold:g} s with --heartbeat {hb:g} ({args.hold / hb:.1f} periods): "
        f"{open_at_mark} open at the start, {open_at_stop} still open at the end; closed: "
        f"{closed or 'none'}"
    )
    print(f"    application heartbeats per open socket during the hold: {beats_min}..{beats_max}")
    print(
        f"    server during the hold: CPU {cpu_s:.1f} s over {wall:.1f} s ({share:.0%} of a "
        f"core), peak RSS {mib(sampler.peak)}, RSS at the end {mib(end_rss)}"
    )
    print(
        f"    busy loops, connecting / holding: clients late to wake by up to "
        f"{max(r['lag'] for r in ready):.2f} / {max(r['lag'] for r in results):.2f} s; "
        f"GET /api/health answered in up to {probe_connect:.2f} / {probe_hold:.2f} s"
    )
    print(f"    server log warnings/errors: {problems or 'none'}")


async def _warm_ws(url: str) -> None:
    """A few sockets opened and closed, so the handler's code is loaded before 'idle' RSS."""
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            async with session.ws_connect(f"{url}/api/ws") as ws:
                await ws.receive_json(timeout=10)
                await ws.send_json({"type": "ping"})
                await ws.receive_json(timeout=10)


async def main_async(args: argparse.Namespace) -> int:
    if args.role == "subscriber":
        await subscriber_role(args)
        return 0
    if args.role == "idle":
        await idle_role(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"machine: {machine_note()}")
        if "fanout" in args.parts:
            # One subscriber first: the latency of the path itself (SQLite write, scheduling).
            for subscribers in dict.fromkeys((1, args.subscribers)):
                await fan_out(args, tmp, subscribers)
        if "idle" in args.parts:
            await idle(args, tmp)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", nargs="+", default=["fanout", "idle"], choices=["fanout", "idle"]
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--stage-seconds", type=float, default=6.0)
    parser.add_argument("--idle", type=int, default=10_000, help="idle sockets for (b) and (c)")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=15.0, help="seconds to hold idle sockets")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--role", choices=["subscriber", "idle"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=300, help=argparse.SUPPRESS)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
