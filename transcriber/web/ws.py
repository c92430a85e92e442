"""The WebSocket handler: one multiplexed connection per client (protocol v1, docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from transcriber.jobs.hub import Hub, Snapshot
from transcriber.protocol.errors import ApiError, error_body
from transcriber.protocol.messages import PROTOCOL, ClientMessage, Ping, Subscribe, Unsubscribe
from transcriber.protocol.stages import Stage
from transcriber.store.task import Task
from transcriber.web.auth import credential_holder, person, required
from transcriber.web.keys import CONFIG, HUB, KEYRING, RUNNER, SOCKETS, TASKS
from transcriber.web.security import origin_allowed, secure

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
MAX_SUBSCRIPTIONS = 1000
# A client this far behind is not reading; drop it rather than hold its backlog.
MAX_BACKLOG = 10_000


class Outbox:
    """What a connection still has to send; progress of one stage collapses to the latest."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.sent_seq: dict[str, int] = {}
        self.overflow = False
        # The subscriptions that asked for the live text (a subscribe with last_segment), and
        # the text that came while their catch-up was being read (sent after it, without what
        # the catch-up already held).
        self.reading: set[str] = set()
        self.held: dict[str, list[dict[str, Any]]] = {}

    def push(self, message: dict[str, Any]) -> None:
        if len(self.items) >= MAX_BACKLOG:
            # Not reading: nothing more is held for it; the sender closes it (1008).
            self.overflow = True
            self.ready.set()
            return
        self.items.append(message)
        self.ready.set()

    def text(self, task_id: str, message: dict[str, Any]) -> None:
        held = self.held.get(task_id)
        if held is not None:
            held.append(message)
        elif task_id in self.reading:
            self.push(message)

    def caught_up(self, task_id: str, last: int) -> None:
        """The catch-up is sent up to segment `last`: what came meanwhile follows it."""
        for message in self.held.pop(task_id, []):
            if message["type"] == "segments":
                fresh = [s for s in message["segments"] if s["index"] > last]
                if not fresh:
                    continue
                message = message | {"segments": fresh}
            self.push(message)

    def deliver(self, snapshot: Snapshot) -> None:
        for index in range(len(self.items) - 1, -1, -1):
            queued = self.items[index].get("task")
            if queued is None or queued["id"] != snapshot["id"]:
                continue
            if (queued["stage"], queued["attempt"]) == (snapshot["stage"], snapshot["attempt"]):
                self.items[index] = {"type": "task", "task": snapshot}
                return
            break
        self.push({"type": "task", "task": snapshot})

    def take(self) -> list[dict[str, Any]]:
        items, self.items = self.items, []
        self.ready.clear()
        fresh = []
        for item in items:
            task = item.get("task")
            stale = task is not None and task["seq"] <= self.sent_seq.get(task["id"], 0)
            if stale and item.get("catch_up") is None:
                continue
            if task is not None:
                self.sent_seq[task["id"]] = max(task["seq"], self.sent_seq.get(task["id"], 0))
                item = {"type": "task", "task": task}
            fresh.append(item)
        return fresh


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request, request.headers.get("Origin")):
        raise ApiError("FORBIDDEN", detail=f"origin {request.headers.get('Origin')!r}")
    config, hub = request.app[CONFIG], request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=config.heartbeat, max_msg_size=MAX_MESSAGE)
    secure(request, ws.headers)  # sent now, not by the middleware
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    outbox = Outbox()
    outbox.push({"type": "hello", "protocol": PROTOCOL, "heartbeat_s": config.heartbeat})
    subscriptions: set[str] = set()
    sender = asyncio.create_task(_send(ws, outbox, hub))
    beat = asyncio.create_task(_heartbeat(outbox, config.heartbeat))
    signed_in = asyncio.create_task(_keep_signed_in(request, ws))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _handle(request, outbox, subscriptions, msg.data)
            elif msg.type == WSMsgType.BINARY:
                _error(outbox, "BAD_MESSAGE", "binary frames are not part of the protocol")
            if sender.done():
                break
    finally:
        for task_id in subscriptions:
            hub.unsubscribe(task_id, outbox)
        for task in (sender, beat, signed_in):
            task.cancel()
            with suppress(asyncio.CancelledError, ConnectionError):
                await task
        request.app[SOCKETS].discard(ws)
    return ws


async def _keep_signed_in(request: web.Request, ws: web.WebSocketResponse) -> None:
    """A socket may stay open for hours: once the key it was opened with is revoked (or keys
    appear on a server that had no credentials) it is closed, as a new request would be
    refused; the page then asks to sign in again."""
    ring = request.app[KEYRING]
    while not ws.closed:
        await asyncio.sleep(ring.ttl)
        await ring.fresh()
        if required(request) and await credential_holder(request) is None:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"signed out")
            return


async def _send(ws: web.WebSocketResponse, outbox: Outbox, hub: Hub) -> None:
    while not ws.closed:
        await outbox.ready.wait()
        if outbox.overflow:
            await ws.close(code=1008, message=b"too far behind")
            return
        for message in outbox.take():
            await ws.send_str(_encode(message, hub))


def _encode(message: dict[str, Any], hub: Hub) -> str:
    task = message.get("task")
    if task is None:
        return json.dumps(message)
    # One snapshot goes to every subscriber of the task: its JSON is made once, in the hub
    # (the same text json.dumps gives for the whole message).
    return '{"type": "task", "task": ' + hub.text(task) + "}"


async def _heartbeat(outbox: Outbox, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        outbox.push({"type": "heartbeat", "ts": time.time()})


def _error(
    outbox: Outbox, code: str, detail: str, message: str | None = None, task_id: Any = None
) -> None:
    body = error_body(code, message, detail)
    if isinstance(task_id, str):
        body["task_id"] = task_id  # which subscription failed, for clients watching many
    outbox.push({"type": "error", "error": body})


async def _handle(request: web.Request, outbox: Outbox, subscriptions: set[str], data: str) -> None:
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as exc:
        _error(outbox, "BAD_MESSAGE", f"not JSON: {exc}")
        return
    try:
        message = ClientMessage.model_validate(raw).root
    except ValidationError as exc:
        detail, task_id = _refusal(raw, exc)
        _error(outbox, "BAD_MESSAGE", detail, task_id=task_id)
        return
    if isinstance(message, Ping):
        outbox.push({"type": "pong"})
    elif isinstance(message, Unsubscribe):
        subscriptions.discard(message.task_id)
        outbox.reading.discard(message.task_id)
        outbox.held.pop(message.task_id, None)
        request.app[HUB].unsubscribe(message.task_id, outbox)
    else:
        await _subscribe(request, outbox, subscriptions, message)


def _refusal(raw: Any, exc: ValidationError) -> tuple[str, Any]:
    """What the client did wrong, in words, and the task_id it sent (to say which one)."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(kind, str):
        return "a message is a JSON object with a string 'type'", None
    first = exc.errors()[0]
    if first["type"] == "union_tag_invalid":
        return f"unknown message type {kind!r}", None
    task_id = raw.get("task_id")
    field = first["loc"][1] if len(first["loc"]) > 1 else None
    if field == "task_id":
        return f"task_id must be a task id, not {task_id!r}", task_id
    if field == "last_seq":
        return "last_seq must be a whole number", task_id
    return first["msg"], task_id


async def _subscribe(
    request: web.Request, outbox: Outbox, subscriptions: set[str], message: Subscribe
) -> None:
    task_id = message.task_id
    hub: Hub = request.app[HUB]
    task = await request.app[TASKS].get(task_id)
    if task is not None and not person(request).may_see(request.app[CONFIG].visibility, task.owner):
        task = None  # answered as a task that does not exist
    if task is not None and task.stage == Stage.QUEUED:
        await request.app[RUNNER].show_position(task_id)
    snapshot = hub.latest(task_id)
    if task is None or snapshot is None:
        _error(outbox, "UNKNOWN_TASK", f"task {task_id!r}", task_id=task_id)
        return
    if task_id not in subscriptions and len(subscriptions) >= MAX_SUBSCRIPTIONS:
        _error(outbox, "BAD_MESSAGE", f"at most {MAX_SUBSCRIPTIONS} subscriptions per socket")
        return
    subscriptions.add(task_id)
    hub.subscribe(task_id, outbox)
    outbox.push({"type": "task", "task": snapshot, "catch_up": True})
    if message.last_segment is None:
        outbox.reading.discard(task_id)
        return
    outbox.reading.add(task_id)
    outbox.held[task_id] = []
    last = await _catch_up_text(request, outbox, task, message.last_segment)
    outbox.caught_up(task_id, last)


async def _catch_up_text(
    request: web.Request, outbox: Outbox, task: Task, last_segment: int
) -> int:
    """The segments after the client's last one: the stored provisional ones, or, once the
    task is complete, word that the final transcript replaces them. Returns the index of the
    last segment sent."""
    if task.stage == Stage.COMPLETE:
        final = {"type": "segments_final", "task_id": task.id, "seq": task.seq}
        outbox.push(final | {"count": task.segments_count})
        return last_segment
    after = last_segment
    while rows := await request.app[TASKS].live.after(task.id, after):
        outbox.push({"type": "segments", "task_id": task.id, "seq": task.seq, "segments": rows})
        after = rows[-1]["index"]
    return after
