"""Shared fixtures: real SQLite files in tmp dirs, real worker processes, real sockets."""

from __future__ import annotations

import asyncio
import io
import math
import os
import struct
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from transcriber.config import Config
from transcriber.web.server import create_app

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
# The 1 GiB free-disk reserve is the server's default, not a fact of the machine the tests run
# on: a CI runner with less free would fail every upload with 507 DISK_FULL. The reserve itself
# is tested with explicit values (test_admission.py); every other server here keeps none.
os.environ["TRANSCRIBER_MIN_FREE_DISK"] = "0"

DATA = Path(__file__).parent / "data"


def tone_wav(seconds: float = 3.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    """A real, decodable WAV file: a sine tone."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
            for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return buf.getvalue()


@pytest.fixture(scope="session")
def wav_bytes() -> bytes:
    return tone_wav()


def plumbing_config(tmp_path: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "pipeline": "plumbing",
        "plumbing_stage_seconds": 0.3,
        "heartbeat": 30.0,
        "min_free_disk": 0,
    }
    values.update(overrides)
    return Config(**values)


ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[ClientFactory]:
    async def factory(**overrides: Any) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(plumbing_config(tmp_path, **overrides))
        )
        return client

    yield factory


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[web.Request, web.Application]:
    return await make_client()


async def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape of the whole API."""
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["detail"], str)
    return dict(error)


async def wait_for_stage(
    client: Any, task_id: str, stages: set[str], timeout: float = 30.0
) -> dict[str, Any]:
    """Long-poll until the task reaches one of `stages`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    since = 0
    while loop.time() < deadline:
        resp = await client.get(f"/api/tasks/{task_id}", params={"wait": 5, "since": since})
        assert resp.status == 200
        snap: dict[str, Any] = await resp.json()
        if snap["stage"] in stages:
            return snap
        since = snap["seq"]
    raise AssertionError(f"task {task_id} never reached {stages}")


async def upload(client: Any, data: bytes, filename: str = "tone.wav", **fields: str) -> Any:
    from aiohttp import FormData

    form = FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    # A BytesIO, not bytes: aiohttp warns (an error here) about large raw bytes bodies.
    form.add_field("file", io.BytesIO(data), filename=filename, content_type="audio/wav")
    return await client.post("/api/tasks", data=form)
