"""In-memory fan-out: the latest snapshot per task, WebSocket subscribers, long-poll waiters."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any, Protocol

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]


class Subscriber(Protocol):
    def deliver(self, snapshot: Snapshot) -> None:
        """Take a snapshot without blocking; the subscriber decides how to queue it."""

    def push(self, message: dict[str, Any]) -> None:
        """Take any other message of the protocol (a task's deletion) without blocking."""

    def text(self, task_id: str, message: dict[str, Any]) -> None:
        """Take a message of a task's live text (segments, segments_final) without blocking;
        a subscriber that did not ask for the text drops it."""


class Hub:
    def __init__(self) -> None:
        self._latest: dict[str, Snapshot] = {}
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._waiters: dict[str, set[asyncio.Future[Snapshot]]] = defaultdict(set)
        self._text: dict[str, tuple[Snapshot, str]] = {}

    def latest(self, task_id: str) -> Snapshot | None:
        return self._latest.get(task_id)

    def publish(self, snapshot: Snapshot) -> None:
        task_id = snapshot["id"]
        current = self._latest.get(task_id)
        if current is not None and current["seq"] >= snapshot["seq"]:
            return
        self._latest[task_id] = snapshot
        for sub in list(self._subscribers.get(task_id, ())):
            sub.deliver(snapshot)
        for fut in self._waiters.pop(task_id, set()):
            if not fut.done():
                fut.set_result(snapshot)

    def announce(self, task_id: str, message: dict[str, Any]) -> None:
        """A task's live text to its subscribers (stored before, like every snapshot)."""
        for sub in list(self._subscribers.get(task_id, ())):
            sub.text(task_id, message)

    def forget(self, task_id: str) -> None:
        """Drop a deleted task: its subscribers are told, once, and their subscription ends."""
        self.release(task_id)
        for sub in self._subscribers.pop(task_id, set()):
            sub.push({"type": "deleted", "task_id": task_id})

    def release(self, task_id: str) -> None:
        """Drop a task's snapshot from memory (a finished task nobody watches)."""
        self._latest.pop(task_id, None)
        self._text.pop(task_id, None)

    def is_watched(self, task_id: str) -> bool:
        return task_id in self._subscribers or task_id in self._waiters

    def __len__(self) -> int:
        """How many tasks' snapshots are held."""
        return len(self._latest)

    def text(self, snapshot: Snapshot) -> str:
        """The snapshot as JSON; the latest one of a task is encoded once, not per subscriber."""
        task_id = snapshot["id"]
        cached = self._text.get(task_id)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        text = json.dumps(snapshot)
        if self._latest.get(task_id) is snapshot:
            self._text[task_id] = (snapshot, text)
        return text

    def subscribe(self, task_id: str, sub: Subscriber) -> None:
        self._subscribers[task_id].add(sub)

    def unsubscribe(self, task_id: str, sub: Subscriber) -> None:
        subs = self._subscribers.get(task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[task_id]

    def watched(self) -> list[str]:
        """Tasks with a WebSocket subscriber or a long-poll waiter."""
        return list(self._subscribers.keys() | self._waiters.keys())

    def subscriber_count(self, task_id: str | None = None) -> int:
        if task_id is not None:
            return len(self._subscribers.get(task_id, ()))
        return len({s for subs in self._subscribers.values() for s in subs})

    async def wait(self, task_id: str, since: int, timeout: float) -> Snapshot | None:
        """The snapshot as soon as its seq is above `since`, else the current one after timeout."""
        current = self._latest.get(task_id)
        if current is None or current["seq"] > since:
            return current
        fut: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        waiters = self._waiters[task_id]
        waiters.add(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return self._latest.get(task_id)
        finally:
            waiters.discard(fut)
            if not waiters and self._waiters.get(task_id) is waiters:
                del self._waiters[task_id]
