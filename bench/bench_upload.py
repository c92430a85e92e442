"""Server memory while a large upload streams in, against the same server idle.

A valid WAV header announcing SIZE bytes of 16 kHz mono PCM, followed by zeros, is sent
without ever being held in the client's memory:
  - raw body (POST /api/tasks?filename=x.wav) from an async generator, with Content-Length;
  - multipart (field `file`) from an async generator (chunked);
  - multipart with `curl -F file=@sparse.wav` (a sparse file on disk), when curl is present.
The server's RSS is sampled every 50 ms from /proc during each upload. 1 GiB of PCM is ~9.3 h of
audio, so the server runs with --max-audio-seconds 100000 and accepts it; each task is deleted
after its upload (which also removes the stored file).

    .venv/bin/python bench/bench_upload.py [--size-mib 1024] [--modes raw multipart curl]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CpuMeter,
    RssSampler,
    Server,
    hwm,
    machine_note,
    mib,
    plumbing_args,
    settle_rss,
    tone_wav,
    wav_header,
)

CHUNK = 1024 * 1024
ZEROS = bytes(CHUNK)
TIMEOUT = aiohttp.ClientTimeout(total=600)


async def body(size: int) -> AsyncIterator[bytes]:
    """The WAV header, then `size` bytes of silence, one reused chunk at a time."""
    yield wav_header(size)
    left = size
    while left > 0:
        piece = ZEROS if left >= CHUNK else ZEROS[:left]
        left -= len(piece)
        yield piece


async def upload_raw(session: aiohttp.ClientSession, url: str, size: int) -> tuple[int, Any]:
    headers = {"Content-Type": "audio/wav", "Content-Length": str(44 + size)}
    async with session.post(
        f"{url}/api/tasks?filename=big.wav", data=body(size), headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def upload_multipart(session: aiohttp.ClientSession, url: str, size: int) -> tuple[int, Any]:
    with aiohttp.MultipartWriter("form-data") as form:
        part = form.append_payload(
            aiohttp.payload.AsyncIterablePayload(body(size), content_type="audio/wav")
        )
        part.set_content_disposition("form-data", name="file", filename="big.wav")
        async with session.post(f"{url}/api/tasks", data=form) as resp:
            return resp.status, await resp.json()


def sparse_wav(path: Path, size: int) -> None:
    with path.open("wb") as out:
        out.write(wav_header(size))
        out.truncate(44 + size)


async def upload_curl(url: str, path: Path) -> tuple[int, Any]:
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "--max-time",
        "600",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-F",
        f"file=@{path};type=audio/wav",
        f"{url}/api/tasks",
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return int(out or 0), None


async def delete_all(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(f"{url}/api/tasks?limit=200") as resp:
        tasks = (await resp.json())["tasks"]
    for task in tasks:
        async with session.delete(f"{url}/api/tasks/{task['id']}") as resp:
            assert resp.status == 204, resp.status


async def warm_up(session: aiohttp.ClientSession, url: str) -> None:
    """One small upload of each kind, so lazily imported code is loaded before 'idle'."""
    small = tone_wav(1.0)
    async with session.post(f"{url}/api/tasks?filename=w.wav", data=small) as resp:
        assert resp.status == 201, await resp.text()
    form = aiohttp.FormData()
    form.add_field("file", small, filename="w.wav", content_type="audio/wav")
    async with session.post(f"{url}/api/tasks", data=form) as resp:
        assert resp.status == 201, await resp.text()
    await asyncio.sleep(2)
    await delete_all(session, url)


async def measure(server: Server, mode: str, size: int, tmp: Path) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        idle = settle_rss(server.pid)
        sparse = tmp / "sparse.wav"
        if mode == "curl":
            sparse_wav(sparse, size)
        cpu = CpuMeter(server.pid)
        with RssSampler(server.pid, 0.05) as sampler:
            begin = time.perf_counter()
            if mode == "raw":
                status, snap = await upload_raw(session, server.url, size)
            elif mode == "multipart":
                status, snap = await upload_multipart(session, server.url, size)
            else:
                status, snap = await upload_curl(server.url, sparse)
            seconds = time.perf_counter() - begin
            server_cpu = cpu.read()[2]
        sparse.unlink(missing_ok=True)
        if status != 201:
            raise RuntimeError(f"{mode}: HTTP {status}: {snap}")
        if snap is not None and abs(snap["duration"] - size / 32000) > 1:
            raise RuntimeError(f"{mode}: duration {snap['duration']}, not {size / 32000}")
        await delete_all(session, server.url)
    return {
        "mode": mode,
        "idle": idle,
        "peak": sampler.peak,
        "delta": sampler.peak - idle,
        "samples": sampler.samples,
        "seconds": seconds,
        "mb_s": (44 + size) / seconds / 1e6,
        "cpu": server_cpu,
    }


async def main_async(args: argparse.Namespace) -> int:
    size = args.size_mib * 2**20
    modes = [m for m in args.modes if m != "curl" or shutil.which("curl")]
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp_name:
        tmp = Path(tmp_name)
        server = Server(tmp, *plumbing_args("--max-audio-seconds", "100000"))
        with server:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                await warm_up(session, server.url)
            results = [await measure(server, mode, size, tmp) for mode in modes]
            vm_hwm = hwm(server.pid)
    print(f"machine: {machine_note()}")
    print(f"upload of {mib(size)} (+44-byte WAV header) to the plumbing server, RSS every 50 ms")
    print(
        f"{'mode':<10} {'idle RSS':>12} {'peak RSS':>12} {'delta':>11} {'samples':>8} "
        f"{'seconds':>8} {'MB/s':>7} {'srv CPU':>8}"
    )
    worst = 0
    for r in results:
        worst = max(worst, r["delta"])
        print(
            f"{r['mode']:<10} {mib(r['idle']):>12} {mib(r['peak']):>12} {mib(r['delta']):>11} "
            f"{r['samples']:>8} {r['seconds']:>8.1f} {r['mb_s']:>7.0f} {r['cpu']:>8.0%}"
        )
    print(f"server VmHWM (peak since start, startup included): {mib(vm_hwm)}")
    verdict = "within" if worst <= args.target_mb * 1e6 else "ABOVE"
    print(f"largest delta {mib(worst)}: {verdict} the {args.target_mb} MB target")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="PCM bytes to send, MiB")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["raw", "multipart", "curl"],
        choices=["raw", "multipart", "curl"],
    )
    parser.add_argument("--target-mb", type=float, default=50.0, help="allowed RSS growth, MB")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
