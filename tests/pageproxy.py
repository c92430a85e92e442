"""A small reverse proxy for the page tests: forwards plain HTTP to the server, and answers
WebSocket upgrades with 403 or 502 while told to (like a proxy that cannot carry WebSockets).

Run: python tests/pageproxy.py --port 8124 --upstream http://127.0.0.1:8123
Switch: POST /__proxy__/websocket with the body "allow", "403" or "502"; blocking also closes
the WebSockets it is carrying. The body "freeze" silences the WebSockets open now (their TCP
connections stay up, no frame passes either way), like a peer that died without a goodbye.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress

import aiohttp
from aiohttp import web

CONTROL = "/__proxy__/websocket"
MODES = ("allow", "403", "502")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)
STATE = web.AppKey("state", dict)


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}


async def control(request: web.Request) -> web.Response:
    mode = (await request.text()).strip()
    state = request.app[STATE]
    if mode == "freeze":
        state["frozen"].update(state["sockets"])
        return web.Response(text=mode)
    if mode not in MODES:
        return web.Response(status=400, text=f"mode must be one of {MODES} or freeze")
    state["mode"] = mode
    if mode != "allow":
        for ws in list(state["sockets"]):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"proxy blocks websockets")
    return web.Response(text=mode)


async def proxy(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await proxy_websocket(request)
    url = request.app[UPSTREAM] + request.rel_url.raw_path_qs
    headers = forwarded_headers(request.headers)
    body = request.content if request.body_exists else None
    try:
        upstream = await request.app[SESSION].request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        )
    except aiohttp.ClientError as exc:
        return web.Response(status=502, text=f"upstream unreachable: {exc}")
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        response.headers.update(forwarded_headers(upstream.headers))
        await response.prepare(request)
        with suppress(aiohttp.ClientError, ConnectionError):
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
        await response.write_eof()
        return response


async def proxy_websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state["mode"] != "allow":
        return web.Response(status=int(state["mode"]), text="websockets are blocked here")
    url = request.app[UPSTREAM] + request.rel_url.raw_path_qs
    headers = {"Host": request.host}
    try:
        upstream = await request.app[SESSION].ws_connect(
            url, headers=headers, origin=request.headers.get("Origin")
        )
    except aiohttp.ClientError as exc:
        return web.Response(status=502, text=f"upstream refused the websocket: {exc}")
    client = web.WebSocketResponse()
    await client.prepare(request)
    state["sockets"].add(client)

    async def pump(source: Socket, sink: Socket) -> None:
        async for msg in source:
            if client in state["frozen"]:
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(msg.data)

    tasks = [
        asyncio.create_task(pump(client, upstream)),
        asyncio.create_task(pump(upstream, client)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        state["sockets"].discard(client)
        state["frozen"].discard(client)
        await upstream.close()
        await client.close()
    return client


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        app[SESSION] = session
        yield


async def close_sockets(app: web.Application) -> None:
    for ws in list(app[STATE]["sockets"]):
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"proxy shutdown")


def make_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=1024**3)
    app[UPSTREAM] = upstream.rstrip("/")
    app[STATE] = {"mode": "allow", "sockets": set(), "frozen": set()}
    app.cleanup_ctx.append(session_ctx)
    app.on_shutdown.append(close_sockets)
    app.router.add_post(CONTROL, control)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    # Long-polls may be open: don't wait for them on the way out.
    app = make_app(args.upstream)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, shutdown_timeout=0.5)


if __name__ == "__main__":
    main()
