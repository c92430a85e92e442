"""Requests per second of GET /api/tasks/{id} against a trivial aiohttp handler, side by side.

Both servers run as their own process on this machine, in the same run, driven by the same
client with the same number of keep-alive connections for the same time; the rounds alternate
(trivial, real, trivial, real, ...) and the medians are compared. The trivial server answers
`web.json_response(snapshot)` with the very snapshot the real server returns (same size).
A third target, the trivial handler with the access log on (as the real server logs at INFO),
shows how much of any gap is the access log.

The client is wrk when installed (`apt-get install wrk`), which leaves the CPU to the servers;
otherwise aiohttp's client in this process (then the client itself may be the limit).

    .venv/bin/python bench/bench_rps.py [--connections 16] [--seconds 5] [--rounds 3]

`--route segments` measures GET /api/tasks/{id}/segments (the completed task's final segments)
instead, against the trivial handler returning that same body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, CpuMeter, Server, machine_note, median, plumbing_args, tone_wav


def serve_trivial(port: int, snapshot_file: str, access_log: bool) -> None:
    """The baseline: one handler that returns a fixed snapshot as JSON."""
    import logging

    from aiohttp import web

    if access_log:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    snapshot = json.loads(Path(snapshot_file).read_text())

    async def task(request: web.Request) -> web.Response:
        return web.json_response(snapshot)

    app = web.Application()
    # The one body, whichever route is measured (--route).
    app.add_routes([web.get("/api/tasks/{task_id}", task)])
    app.add_routes([web.get("/api/tasks/{task_id}/segments", task)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def prepare_task(url: str) -> dict[str, Any]:
    """Upload a short WAV and wait for it to complete; its snapshot is what we fetch."""
    request = urllib.request.Request(
        f"{url}/api/tasks?filename=tone.wav",
        data=tone_wav(2.0),
        headers={"Content-Type": "audio/wav"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        task_id = json.load(resp)["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/tasks/{task_id}", timeout=10) as resp:
            snapshot: dict[str, Any] = json.load(resp)
        if snapshot["stage"] == "complete":
            return snapshot
        time.sleep(0.2)
    raise RuntimeError(f"task did not complete: {snapshot}")


def run_wrk(url: str, connections: int, seconds: float) -> tuple[float, int]:
    """(requests per second, errors) from wrk."""
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return rps, errors


async def _aiohttp_load(url: str, connections: int, seconds: float) -> tuple[float, int]:
    counts = [0, 0]  # ok, errors
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def worker() -> None:
            while loop.time() < deadline:
                async with session.get(url) as resp:
                    await resp.read()
                    counts[0 if resp.status == 200 else 1] += 1

        begin = loop.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = loop.time() - begin
    return counts[0] / wall, counts[1]


def run_aiohttp(url: str, connections: int, seconds: float) -> tuple[float, int]:
    return asyncio.run(_aiohttp_load(url, connections, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--client", choices=["auto", "wrk", "aiohttp"], default="auto")
    parser.add_argument("--no-access-log-target", action="store_true")
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also serve git REF (a worktree) as target 'before': the cost of a change",
    )
    parser.add_argument("--route", choices=["snapshot", "segments"], default="snapshot")
    parser.add_argument("--serve-trivial", nargs=2, metavar=("PORT", "SNAPSHOT"))
    parser.add_argument("--access-log", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_trivial:
        serve_trivial(int(args.serve_trivial[0]), args.serve_trivial[1], args.access_log)
        return
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "aiohttp"
    load = run_wrk if client == "wrk" else run_aiohttp
    with tempfile.TemporaryDirectory(prefix="bench-rps-") as tmp_name:
        tmp = Path(tmp_name)
        real = Server(tmp, *plumbing_args(), name="real").start()
        servers = {"real": real}
        try:
            snapshot = prepare_task(real.url)
            tail = "/segments" if args.route == "segments" else ""
            with urllib.request.urlopen(f"{real.url}/api/tasks/{snapshot['id']}{tail}") as r:
                body = json.load(r)  # what the trivial handler answers, the same size
            snap_file = tmp / "snapshot.json"
            snap_file.write_text(json.dumps(body))
            trivial_cmd = [sys.executable, __file__, "--serve-trivial", "{port}", str(snap_file)]
            servers["trivial"] = Server(tmp, cmd=trivial_cmd, name="trivial")
            if not args.no_access_log_target:
                servers["trivial+log"] = Server(
                    tmp, cmd=[*trivial_cmd, "--access-log"], name="trivial-log"
                )
            for name, server in servers.items():
                if name != "real":
                    server.start(ready_path=f"/api/tasks/{snapshot['id']}")
            paths = {name: f"/api/tasks/{snapshot['id']}{tail}" for name in servers}
            if args.compare:
                before = Server(
                    tmp, *plumbing_args(), name="before", root=worktree(tmp, args.compare)
                )
                servers["before"] = before.start()
                paths["before"] = f"/api/tasks/{prepare_task(before.url)['id']}{tail}"
            results = rounds(servers, paths, load, args)
        finally:
            for server in servers.values():
                server.stop()
            if args.compare:
                subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before-src")])
    report(results, body, client, args)


def worktree(tmp: Path, ref: str) -> Path:
    """The project at `ref`, checked out beside this one (its own code, this venv)."""
    folder = tmp / "before-src"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], check=True, cwd=ROOT)
    return folder


def rounds(
    servers: dict[str, Server], paths: dict[str, str], load: Any, args: argparse.Namespace
) -> dict[str, list[tuple[float, int, float]]]:
    for name, server in servers.items():  # warm-up: first connections, lazy imports
        load(server.url + paths[name], args.connections, 1.0)
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        # A new order each round: the machine's load drifts, and no target should always
        # run first or last.
        order = list(servers.items())
        random.shuffle(order)
        for name, server in order:
            cpu = CpuMeter(server.pid)
            rps, errors = load(server.url + paths[name], args.connections, args.seconds)
            results[name].append((rps, errors, cpu.read()[2]))
    return results


def report(
    results: dict[str, list[tuple[float, int, float]]],
    snapshot: dict[str, Any],
    client: str,
    args: argparse.Namespace,
) -> None:
    size = len(json.dumps(snapshot))
    print(f"machine: {machine_note()}")
    print(
        f"GET /api/tasks/{{id}}{'/segments' if args.route == 'segments' else ''} ({size}-byte"
        f" body), client {client}, "
        f"{args.connections} keep-alive connections, {args.rounds} x {args.seconds:g} s per target"
    )
    print(
        f"{'target':<12} {'rounds (req/s)':<28} {'median':>8} {'errors':>7} {'srv CPU':>8} "
        f"{'req/CPU-s':>10}"
    )
    medians, per_cpu = {}, {}
    for name, rows in results.items():
        medians[name] = median([r[0] for r in rows])
        # Requests per second of the server's own CPU time: steadier than req/s when other
        # processes share the cores.
        per_cpu[name] = median([r[0] / r[2] for r in rows if r[2] > 0])
        each = " ".join(f"{r[0]:.0f}" for r in rows)
        errors = sum(r[1] for r in rows)
        cpu = median([r[2] for r in rows])
        print(
            f"{name:<12} {each:<28} {medians[name]:>8.0f} {errors:>7} {cpu:>8.0%} "
            f"{per_cpu[name]:>10.0f}"
        )
    for other in ("trivial", "trivial+log", "before"):
        if other in medians:
            print(
                f"ratio real / {other}: {medians['real'] / medians[other]:.2f} req/s, "
                f"{per_cpu['real'] / per_cpu[other]:.2f} req per CPU-second"
            )
    print("(aim: real / trivial >= 0.7)")


if __name__ == "__main__":
    main()
