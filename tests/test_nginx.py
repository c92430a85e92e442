"""Behind a real nginx with a short proxy_read_timeout: the heartbeat keeps a quiet socket open,
and a heartbeat slower than the proxy's timeout lets the proxy cut it (why the heartbeat exists)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from .serverproc import ServerProcess, free_port

CONF = """
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 3s;
            proxy_send_timeout 3s;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    assert exe, "nginx is required for this test (Debian package nginx-light)"
    return exe


@pytest.fixture
def proxied(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(proxy url, server url) for a server with the heartbeat given by the test's param."""
    heartbeat = str(request.param)
    server = ServerProcess(tmp_path / "data", "--pipeline", "plumbing", "--heartbeat", heartbeat)
    server.start()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(CONF.format(prefix=prefix, port=port, upstream=server.port, user=user))
    proc = subprocess.Popen(
        [nginx_binary(), "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", server.url
    proc.terminate()
    proc.wait(10)
    assert "emerg" not in (prefix / "error.log").read_text()
    server.stop()


async def quiet_socket(proxy_url: str, hold: float) -> tuple[list[str], float | None]:
    """Subscribe to a task that never changes; return message types seen and when it closed."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{proxy_url}/api/tasks", json={"filename": "q.wav"}) as resp:
            task_id = (await resp.json())["id"]
        ws = await session.ws_connect(f"{proxy_url}/api/ws")
        await ws.send_json({"type": "subscribe", "task_id": task_id})
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        while (left := hold - (loop.time() - start)) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                return seen, loop.time() - start
            seen.append(json.loads(msg.data)["type"])
        await ws.close()
        return seen, None


@pytest.mark.parametrize("proxied", [1], indirect=True)
async def test_heartbeat_keeps_quiet_socket_through_proxy(proxied: tuple[str, str]) -> None:
    seen, closed_after = await quiet_socket(proxied[0], hold=8.0)
    assert closed_after is None, seen
    assert seen[:2] == ["hello", "task"]
    assert seen.count("heartbeat") >= 6


@pytest.mark.parametrize("proxied", [10], indirect=True)
async def test_slow_heartbeat_lets_proxy_cut_socket(proxied: tuple[str, str]) -> None:
    seen, closed_after = await quiet_socket(proxied[0], hold=8.0)
    assert seen == ["hello", "task"]
    assert closed_after is not None and 2.5 < closed_after < 6.0
