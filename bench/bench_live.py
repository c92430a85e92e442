"""The transcript as it is decoded (live text): what it costs and how soon it shows.

(a) pipeline, real model (`base` on the CPU by default), a 10-minute file (the three-voice
    fixture looped, as bench_pipeline.py), transcription only (diarize=false,
    word_timestamps=false). Two servers, one with the live text (the default) and one with
    --no-live-text, run the file in turn: each server's first task (cold worker: the model is
    loaded) and then --rounds tasks on its warm worker, alternating between the servers.
    For each task:
    - time from the end of the upload (the PUT's answer) to the first `segments` message on a
      WebSocket that subscribed with last_segment before the audio came; with the live text off,
      to `segments_final` (the first moment any text shows);
    - the transcribing stage's time (the transcript's timings): the ratio live / off on the warm
      workers is the throughput cost of streaming segments;
    - SQLite writes while the task ran, per minute of audio: commits, and rows changed
      (sqlite3's total_changes), counted inside the server process (the server runs under
      this script's --role serve, which counts on every connection it opens), and the
      task's live_segments rows.
(b) fan-out, plumbing pipeline: SUBSCRIBERS sockets subscribe to one task before its audio
    comes, once with last_segment (the live text) and once without (snapshots only, the
    baseline), each on a fresh server. Delay of a `segments` message = receipt time - the
    `updated_at` of the snapshot with the same seq (the server stores the segments, then
    stamps and stores that snapshot, then sends both); the snapshots' delay likewise. Bytes
    received per subscriber (text frames' payload, from the subscribe to the end).
(c) the worker's side of the live text, alone: CPU per segment of LiveSender and the
    multiprocessing queue it writes to, one message a segment and batched. With (a)'s server
    CPU this bounds the cost of streaming where (a)'s wall-time ratio is lost in the noise of a
    shared machine (and of the decoder: a window that falls back to a higher temperature samples,
    so two runs of one file may differ).

    .venv/bin/python bench/bench_live.py [--parts pipeline fanout sender] [--model base]
        [--minutes 10] [--rounds 2] [--subscribers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import make_long_file
from bench_ws import (
    CONNECT_CONCURRENCY,
    Clients,
    Countdown,
    _connector,
    open_socket,
    request,
    split,
)
from common import (
    HOST,
    CpuMeter,
    Server,
    cpu_seconds,
    emit,
    iso_seconds,
    log_problems,
    machine_note,
    percentile,
    plumbing_args,
    plumbing_env,
    raise_nofile,
    tone_wav,
    tree_cpu_seconds,
)
from sqlite_counted import COUNTS_EVERY

BENCH = Path(__file__).resolve().parent
OPTIONS = {"diarize": False, "word_timestamps": False}


# -- the server, counting its SQLite writes ------------------------------------------------------


class CountedServer(Server):
    """A Server run by serve_role; counts() reads its SQLite writes so far."""

    def __init__(self, tmp: Path, name: str, *args: str) -> None:
        self.counts_path = tmp / f"{name}-counts.json"
        serve = ["--host", HOST, "--port", "{port}", "--data-dir", f"{tmp}/{name}-{{port}}"]
        cmd = [sys.executable, str(BENCH / "sqlite_counted.py"), str(self.counts_path), "--"]
        super().__init__(tmp, cmd=[*cmd, *serve, *args], name=name)

    def counts(self) -> dict[str, int]:
        time.sleep(3 * COUNTS_EVERY)
        result: dict[str, int] = json.loads(self.counts_path.read_text())
        return result

    def live_rows(self, task_id: str) -> int:
        path = self.data_dir / "transcriber.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT count(*) FROM live_segments WHERE task_id = ?", (task_id,))
            count: int = row.fetchone()[0]
        return count


# -- (a) pipeline --------------------------------------------------------------------------------


async def follow_text(ws: aiohttp.ClientWebSocketResponse, task_id: str) -> dict[str, Any]:
    """Receipt times (time.monotonic) of what a reader of the live text sees, until the end."""
    seen: dict[str, Any] = {"batches": 0, "segments": 0, "first": None, "final": None}
    seen["stages"] = {}
    while True:
        msg = await ws.receive()
        now = time.monotonic()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"socket closed: {msg}")
        message = json.loads(msg.data)
        kind = message.get("type")
        if kind == "task" and message["task"]["id"] == task_id:
            stage = message["task"]["stage"]
            seen["stages"].setdefault(stage, now)
            if message["task"]["detail"].startswith(("Window", "Segment")):
                seen.setdefault("window", now)  # the decoder has begun its first 30 s window
            if stage in ("failed", "cancelled"):
                raise RuntimeError(f"task {stage}: {message['task']['error']}")
        elif kind == "segments":
            seen["batches"] += 1
            seen["segments"] += len(message["segments"])
            if seen["first"] is None:
                seen["first"] = now
                seen["first_end"] = message["segments"][0]["end"]
        elif kind == "segments_final":
            seen["final"] = now
            seen["count"] = message["count"]
            return seen


async def run_task(server: CountedServer, audio: Path) -> dict[str, Any]:
    body = {"filename": "long.wav", "options": OPTIONS}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/api/tasks", json=body) as resp:
            task = await resp.json()
            assert resp.status < 300, task
        async with session.ws_connect(f"{server.url.replace('http', 'ws', 1)}/api/ws") as ws:
            await ws.receive_json(timeout=30)  # hello
            await ws.send_json({"type": "subscribe", "task_id": task["id"], "last_segment": -1})
            reader = asyncio.create_task(follow_text(ws, task["id"]))
            before = await asyncio.to_thread(server.counts)
            cpu_before = server_cpu(server.pid)
            with audio.open("rb") as data:
                put = f"{server.url}/api/tasks/{task['id']}/audio"
                headers = {"Content-Type": "audio/wav"}
                async with session.put(put, data=data, headers=headers) as resp:
                    assert resp.status < 300, await resp.text()
            uploaded = time.monotonic()
            seen = await asyncio.wait_for(reader, 3600)
        cpu_after = server_cpu(server.pid)
        after = await asyncio.to_thread(server.counts)
        url = f"{server.url}/api/tasks/{task['id']}/transcript?format=json"
        async with session.get(url) as resp:
            transcript = await resp.json()
    first = seen["first"] if seen["first"] is not None else seen["final"]
    return {
        "first": first - uploaded,
        "first_end": seen.get("first_end"),
        "to_transcribing": seen["stages"].get("transcribing", math.nan) - uploaded,
        "to_window": seen.get("window", math.nan) - uploaded,
        "complete": seen["stages"]["complete"] - uploaded,
        "transcribing": transcript["timings"]["transcribing"],
        "batches": seen["batches"],
        "segments": seen["segments"],
        "count": seen["count"],
        "commits": after["commits"] - before["commits"],
        "changes": after["changes"] - before["changes"],
        "live_rows": server.live_rows(task["id"]),
        "server_cpu": round(cpu_after[0] - cpu_before[0], 3),
        "worker_cpu": round(cpu_after[1] - cpu_before[1], 3),
    }


def server_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of the server's own process, and of its workers (all descendants)."""
    own = cpu_seconds(pid)
    return own, tree_cpu_seconds(pid) - own


async def pipeline(args: argparse.Namespace, tmp: Path) -> None:
    audio = make_long_file(tmp, args.minutes)
    device = ["--model", args.model, "--device", args.device]
    servers = {
        "live": CountedServer(tmp, "live", *device),
        "off": CountedServer(tmp, "off", *device, "--no-live-text"),
    }
    runs: dict[str, list[dict[str, Any]]] = {"live": [], "off": []}
    try:
        for server in servers.values():
            server.start()
        for round_ in range(args.rounds + 1):
            for name, server in servers.items():
                print(
                    f"  {name} run {round_} ({'cold' if round_ == 0 else 'warm'}): {machine_note()}"
                )
                result = await run_task(server, audio)
                print(f"    {json.dumps(result)}")
                runs[name].append(result)
    finally:
        for server in servers.values():
            server.stop()
    report_pipeline(args, runs, servers)


def report_pipeline(
    args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], servers: dict[str, Any]
) -> None:
    minutes = args.minutes
    print(f"\n(a) {args.model} on {args.device}, {minutes:g} minutes of audio, transcription only")
    print("    time from the end of the upload to the first text on the WebSocket:")
    for name, label in (("live", "live text"), ("off", "--no-live-text (segments_final)")):
        cold, warm = runs[name][0], runs[name][1:]
        warm_first = statistics.median(r["first"] for r in warm)
        each = ", ".join(f"{r['first']:.1f}" for r in warm)
        windows = ", ".join(f"{r['to_window']:.1f}" for r in warm)
        print(
            f"      {label}: cold worker {cold['first']:.1f} s (the first window begun after "
            f"{cold['to_window']:.1f} s), warm worker {warm_first:.1f} s (median of "
            f"{len(warm)}: {each}; the first window begun after "
            f"{windows} s)"
        )
    first_end = runs["live"][0]["first_end"]
    print(f"      the first segment ends {first_end} s into the audio")
    print("    each task: transcribing stage s, segments, CPU s of the worker / of the server")
    for name in ("live", "off"):
        cells = [
            f"{r['transcribing']:.1f} s, {r['count']}, "
            f"{r['worker_cpu']:.0f} / {r['server_cpu']:.2f}"
            for r in runs[name]
        ]
        print(f"      {name}: cold {cells[0]}; warm {'; '.join(cells[1:])}")
    live = statistics.median(r["transcribing"] for r in runs["live"][1:])
    off = statistics.median(r["transcribing"] for r in runs["off"][1:])
    pairs = [
        a["transcribing"] / b["transcribing"]
        for a, b in zip(runs["live"][1:], runs["off"][1:], strict=True)
    ]
    print(
        f"      transcribing, warm workers, ratio live / off of the medians: {live / off:.3f}; "
        f"per round: {', '.join(f'{p:.3f}' for p in pairs)}"
    )
    extra = statistics.median(r["server_cpu"] for r in runs["live"]) - statistics.median(
        r["server_cpu"] for r in runs["off"]
    )
    print(
        f"      the server's CPU for the live text (median live - median off): {extra:.2f} s a "
        f"task, {extra / live:.2%} of the warm transcribing time"
    )
    print("    SQLite writes while a task ran (upload to complete), per minute of audio:")
    for name in ("live", "off"):
        rows = runs[name]
        commits = statistics.median(r["commits"] for r in rows) / minutes
        changes = statistics.median(r["changes"] for r in rows) / minutes
        live_rows = rows[-1]["live_rows"]
        print(
            f"      {name}: {commits:.1f} commits, {changes:.1f} rows changed; live_segments "
            f"rows {live_rows} for {rows[-1]['count']} segments; {rows[-1]['batches']} "
            f"segments messages"
        )
    for name, server in servers.items():
        print(f"    {name} server log warnings/errors: {log_problems(server.log) or 'none'}")


# -- (c) the worker's side -----------------------------------------------------------------------


def sender(segments: int) -> None:
    """CPU of the worker process for sending the live text: LiveSender into a spawn-context
    multiprocessing queue (the worker's channel), drained by a thread of the same process (so
    the unpickling, which is the server's work, is counted too: an upper bound)."""
    import multiprocessing
    from types import SimpleNamespace

    from transcriber.worker import process
    from transcriber.worker.pipeline.types import Segment

    text = "and then we thought the remote control should have a scroll wheel like a mouse"
    job = SimpleNamespace(task_id="0123456789abcdef", attempt=1)
    print(f"\n(c) the worker's side: {segments} segments of {len(text)} characters")
    every = process.LIVE_EVERY
    for label, interval in (("one message a segment", 0.0), (f"batched ({every:g} s)", every)):
        channel = multiprocessing.get_context("spawn").Queue()
        drained = threading.Thread(target=lambda q=channel: _drain(q), daemon=True)
        drained.start()
        process._queue = channel
        process.LIVE_EVERY = interval
        live = process.LiveSender(job)  # type: ignore[arg-type]
        begin = time.process_time()
        for n in range(segments):
            live.segment(n // 50, Segment(n, n * 4.0, n * 4.0 + 3.5, text))
            if n % 50 == 49:
                live.piece_done(n // 50, "en")
        channel.put(None)
        drained.join()
        cpu = time.process_time() - begin
        channel.close()
        channel.join_thread()
        print(f"    {label}: {cpu / segments * 1e6:.0f} us of CPU a segment")
    process.LIVE_EVERY = every
    process._queue = None


def _drain(channel: Any) -> None:
    while channel.get() is not None:
        pass


# -- (b) fan-out ---------------------------------------------------------------------------------


async def subscriber_role(args: argparse.Namespace) -> None:
    """`count` sockets subscribe to one task (with last_segment when --live) and keep every
    message until the end; then a summary for the parent."""
    raise_nofile(args.count + 256)
    url = f"{args.url.replace('http', 'ws', 1)}/api/ws"
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    countdown = Countdown(args.count)
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    subscribe: dict[str, Any] = {"type": "subscribe", "task_id": args.task}
    if args.live:
        subscribe["last_segment"] = -1
    end = '"type": "segments_final"' if args.live else '"stage": "complete"'

    async def one(session: aiohttp.ClientSession) -> list[tuple[float, str]] | None:
        ws = await open_socket(session, url, gate)
        if ws is None:
            countdown.tick(False)
            return None
        sockets.append(ws)
        raw: list[tuple[float, str]] = []
        with suppress(aiohttp.ClientError, TimeoutError, OSError):
            await ws.send_json(subscribe)
            first = await ws.receive()
            raw.append((time.time(), first.data))
            countdown.tick(True)
            while True:
                msg = await asyncio.wait_for(ws.receive(), args.timeout)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                raw.append((time.time(), msg.data))
                if end in msg.data:
                    break
        return raw

    async with aiohttp.ClientSession(connector=_connector()) as session:
        followers = [asyncio.create_task(one(session)) for _ in range(args.count)]
        await countdown.done.wait()
        emit("READY", {"connected": args.count - countdown.failed})
        followed = await asyncio.gather(*followers)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    emit("RESULT", summarize(args.task, [raw for raw in followed if raw is not None]))


def summarize(task_id: str, logs: list[list[tuple[float, str]]]) -> dict[str, Any]:
    """Per subscriber: bytes, segments (in order, once each), and receipt times by seq."""
    stamps: dict[int, float] = {}  # seq -> the snapshot's updated_at
    shown: dict[int, str] = {}  # seq -> the snapshot's stage and detail
    snapshot_times: list[tuple[int, float]] = []
    segment_times: list[tuple[int, float]] = []
    sizes: list[int] = []
    problems = {"segments_out_of_order": 0, "no_final": 0}
    segment_counts: list[int] = []
    for raw in logs:
        sizes.append(sum(len(text.encode()) for _, text in raw))
        indices: list[int] = []
        final = False
        for n, (received, text) in enumerate(raw):
            message = json.loads(text)
            if message["type"] == "task" and message["task"]["id"] == task_id:
                snap = message["task"]
                stamps[snap["seq"]] = iso_seconds(snap["updated_at"])
                shown[snap["seq"]] = f"{snap['stage']}: {snap['detail']}"
                if n > 0:  # not the answer to the subscribe (the state as it was)
                    snapshot_times.append((snap["seq"], received))
                final = final or snap["stage"] == "complete"
            elif message["type"] == "segments":
                indices += [s["index"] for s in message["segments"]]
                segment_times.append((message["seq"], received))
        problems["segments_out_of_order"] += indices != list(range(len(indices)))
        problems["no_final"] += not final
        segment_counts.append(len(indices))
    return {
        "subscribers": len(logs),
        "stamps": stamps,
        "shown": shown,
        "snapshots": snapshot_times,
        "segments": segment_times,
        "sizes": sizes,
        "segment_counts": segment_counts,
        "problems": problems,
    }


class LiveClients(Clients):
    """bench_ws's client processes, running this script's subscriber role."""

    def __init__(self, url: str, counts: list[int], timeout: float, *extra: str) -> None:
        super().__init__("subscriber", url, counts, timeout, *extra)
        self.cmds = [[sys.executable, __file__, *cmd[2:]] for cmd in self.cmds]


async def fan_out(args: argparse.Namespace, tmp: Path, live: bool) -> dict[str, Any]:
    subscribers = args.subscribers
    env = plumbing_env(args.stage_seconds)
    name = "fanout-live" if live else "fanout-snapshots"
    with Server(tmp, *plumbing_args(), env=env, nofile=subscribers + 1024, name=name) as server:
        task = request(
            f"{server.url}/api/tasks", "POST", b'{"filename": "tone.wav"}', "application/json"
        )
        timeout = 5 * args.stage_seconds + 120
        extra = ["--task", task["id"], *(["--live"] if live else [])]
        counts = split(subscribers, min(args.procs, subscribers))
        clients = LiveClients(server.url, counts, timeout, *extra)
        await clients.start()
        try:
            ready = await clients.collect("READY", 300)
            cpu = CpuMeter(server.pid)
            await asyncio.to_thread(
                request,
                f"{server.url}/api/tasks/{task['id']}/audio",
                "PUT",
                tone_wav(10.0),  # 5 segments in the plumbing pipeline
                "audio/wav",
            )
            results = await clients.collect("RESULT", timeout)
            cpu_s, wall, share = cpu.read()
        finally:
            await clients.close()
    stamps = {int(k): v for r in results for k, v in r["stamps"].items()}
    shown = {int(k): v for r in results for k, v in r["shown"].items()}
    unmatched = 0

    by_seq: dict[int, list[float]] = {}

    def delays(pairs: list[tuple[int, float]], kind: str) -> list[float]:
        nonlocal unmatched
        out = []
        for seq, received in pairs:
            if seq in stamps:
                out.append(received - stamps[seq])
                if kind == "snapshot":
                    by_seq.setdefault(seq, []).append(out[-1])
            else:
                unmatched += 1
        return out

    problems: dict[str, int] = {}
    for r in results:
        for key, value in r["problems"].items():
            problems[key] = problems.get(key, 0) + value
    return {
        "connected": sum(r["connected"] for r in ready),
        "followed": sum(r["subscribers"] for r in results),
        "segments": delays([tuple(p) for r in results for p in r["segments"]], "segment"),
        "snapshots": delays([tuple(p) for r in results for p in r["snapshots"]], "snapshot"),
        "slowest": sorted(
            ((percentile(v, 50), max(v), seq, shown.get(seq, "")) for seq, v in by_seq.items()),
            reverse=True,
        )[:3],
        "unmatched": unmatched,
        "sizes": [s for r in results for s in r["sizes"]],
        "segment_counts": [c for r in results for c in r["segment_counts"]],
        "problems": problems,
        "cpu": (cpu_s, wall, share),
    }


def _lat(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms, default=math.nan):.1f} ms (n={len(ms)})"
    )


async def fanout(args: argparse.Namespace, tmp: Path) -> None:
    print(
        f"\n(b) fan-out: {args.subscribers} subscribers on one task (plumbing, "
        f"{args.stage_seconds:g} s per stage, 5 segments), {args.procs} client processes"
    )
    for live in (False, True):
        print(f"  {'live text' if live else 'snapshots only'}: {machine_note()}")
        r = await fan_out(args, tmp, live)
        label = "with last_segment (live text)" if live else "without last_segment (baseline)"
        print(f"    {label}: {r['connected']} connected, {r['followed']} followed to the end")
        if live:
            counts = r["segment_counts"]
            print(
                f"      segments per subscriber: {min(counts, default=0)}..{max(counts, default=0)}"
                f"; segments message delay: {_lat(r['segments'])}"
            )
        print(f"      snapshot delay: {_lat(r['snapshots'])}")
        slowest = "; ".join(
            f"seq {seq} ({what}) p50 {p50 * 1000:.0f} ms, max {top * 1000:.0f} ms"
            for p50, top, seq, what in r["slowest"]
        )
        print(f"      the slowest snapshots: {slowest}")
        sizes = r["sizes"]
        print(
            f"      bytes received per subscriber: mean {statistics.mean(sizes):.0f}, "
            f"min {min(sizes)}, max {max(sizes)}"
        )
        cpu_s, wall, share = r["cpu"]
        print(
            f"      server CPU {cpu_s:.1f} s over {wall:.1f} s ({share:.0%} of a core); "
            f"problems {r['problems']}; messages without their snapshot's stamp {r['unmatched']}"
        )


# -- main ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    if args.role == "subscriber":
        await subscriber_role(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"machine: {machine_note()}")
        if "pipeline" in args.parts:
            await pipeline(args, tmp)
        if "fanout" in args.parts:
            await fanout(args, tmp)
        if "sender" in args.parts:
            sender(args.sender_segments)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["pipeline", "fanout", "sender"],
        choices=["pipeline", "fanout", "sender"],
    )
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="warm tasks per server")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--stage-seconds", type=float, default=6.0)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--sender-segments", type=int, default=20_000)
    parser.add_argument("--role", choices=["subscriber"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=300, help=argparse.SUPPRESS)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
