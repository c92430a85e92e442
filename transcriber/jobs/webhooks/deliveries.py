"""The webhook schedule: each pending delivery is tried when due, its state written to the
task (and so published) after every attempt, its message kept in SQLite until it is done.

One loop wakes for the earliest due delivery; attempts run beside it, a few at a time. A
restart takes up every delivery still pending, with the same webhook-id (store/webhooks.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any

from transcriber.config import Config
from transcriber.jobs.tasks import Tasks
from transcriber.jobs.webhooks.post import AttemptFailed, post
from transcriber.jobs.webhooks.signing import signed_headers, webhook_key
from transcriber.jobs.webhooks.state import after_attempt, due_at
from transcriber.jobs.webhooks.targets import addresses, target
from transcriber.protocol.errors import ApiError
from transcriber.store.task import Task, now_iso, task_json
from transcriber.store.webhooks import DeliveryStore

log = logging.getLogger(__name__)

# Attempts under way at once: a receiver that hangs holds one for --webhook-timeout.
MAX_SENDING = 8


class Deliveries:
    def __init__(self, tasks: Tasks, config: Config) -> None:
        self.tasks = tasks
        self.store = DeliveryStore(tasks.store.db)
        self.hosts = config.webhook_hosts
        self.key = webhook_key(config.webhook_secret) if config.webhook_secret else None
        self.timeout = config.webhook_timeout
        self.backoff = config.webhook_backoff
        # message id -> (due as time.time(), task id)
        self._due: dict[str, tuple[float, str]] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_SENDING)
        self._loop: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        tasks.on_end.append(self.owe)

    async def start(self) -> None:
        """Take up the deliveries a previous run left pending, then start the loop."""
        for message_id in await self.store.leftovers():
            await self.store.remove(message_id)
        for task_id, raw in await self.store.pending():
            state = json.loads(raw)
            if await self.store.get(state["id"]) is None:
                task = await self.tasks.get(task_id)
                if task is None:
                    continue
                await self._keep(task, state["id"])  # the end was written, its message not
            self._plan(state["id"], task_id, due_at(state))
        self._loop = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop now: an attempt cut here is made again after the next start, same id."""
        for running in [self._loop, *self._sending]:
            if running is not None:
                running.cancel()
        for running in [self._loop, *self._sending]:
            if running is not None:
                with suppress(asyncio.CancelledError):
                    await running

    async def owe(self, task: Task) -> None:
        """A task has just ended (Tasks.on_end): keep the message of the delivery it owes."""
        if task.webhook is None:
            return  # no callback_url
        await self._keep(task, task.webhook["id"])
        self._plan(task.webhook["id"], task.id, due_at(task.webhook))

    async def _keep(self, task: Task, message_id: str) -> None:
        body = json.dumps(task_json(task), ensure_ascii=False).encode()
        await self.store.add(message_id, task.id, task.options["callback_url"], body, now_iso())

    def _plan(self, message_id: str, task_id: str, when: float) -> None:
        self._due[message_id] = (when, task_id)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            now = time.time()
            for message_id, (when, task_id) in list(self._due.items()):
                if when <= now:
                    del self._due[message_id]
                    self._spawn(self._attempt(message_id, task_id))
            self._wake.clear()
            later = min((when for when, _ in self._due.values()), default=None)
            wait = None if later is None else max(0.0, later - time.time())
            with suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _spawn(self, attempt: Coroutine[Any, Any, None]) -> None:
        running = asyncio.create_task(attempt)
        self._sending.add(running)
        running.add_done_callback(self._sending.discard)

    async def _attempt(self, message_id: str, task_id: str) -> None:
        async with self._slots:
            try:
                await self._try(message_id, task_id)
            except Exception:
                log.exception("webhook %s of task %s: tried again later", message_id, task_id)
                self._plan(message_id, task_id, time.time() + (self.backoff or (60.0,))[-1])

    def _owed(self, task: Task | None, message_id: str) -> bool:
        state = task.webhook if task is not None else None
        return state is not None and state["id"] == message_id and state["state"] == "pending"

    async def _try(self, message_id: str, task_id: str) -> None:
        row = await self.store.get(message_id)
        if row is None or not self._owed(await self.tasks.get(task_id), message_id):
            await self.store.remove(message_id)
            return
        _, url, body = row
        status, error, final = await self._send(url, message_id, body)
        task = await self.tasks.get(task_id)  # it may have changed or gone meanwhile
        if task is None or task.webhook is None or not self._owed(task, message_id):
            await self.store.remove(message_id)
            return
        state = after_attempt(task.webhook, status, error, self.backoff, final)
        log.info("webhook %s of task %s: %s", message_id, task_id, error or status)
        with suppress(KeyError):
            await self.tasks.update(task_id, webhook=state)
        if state["state"] == "pending":
            self._plan(message_id, task_id, due_at(state))
        else:
            await self.store.remove(message_id)

    async def _send(
        self, url: str, message_id: str, body: bytes
    ) -> tuple[int | None, str | None, bool]:
        """(status, error, final) of one attempt; final: no retry can mend it."""
        try:
            found = target(url, self.hosts)
        except ApiError as exc:
            return None, str(exc.body["detail"]), True
        if self.key is None:  # the config refuses hosts without a secret
            return None, "no --webhook-secret", True
        try:
            checked = await addresses(found)
            headers = signed_headers(self.key, message_id, int(time.time()), body)
            status = await post(found, checked, headers, body, self.timeout)
        except (ValueError, AttemptFailed) as exc:
            return None, str(exc), False
        if 200 <= status < 300:
            return status, None, False
        return status, f"answered HTTP {status}", False
