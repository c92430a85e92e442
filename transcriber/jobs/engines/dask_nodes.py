"""The nodes the coordinator has admitted, their slots, and which of them are free.

Every worker that registers with the scheduler is looked at once: a node must present the
cluster's node token and run the coordinator's transcriber, Dask and Python versions, or it
is refused (logged here, told to the node, and closed). The scheduler is asked for its
workers every WATCH_EVERY seconds; a node that is gone from the answer is lost, and every
job placed on it learns so through `lost`. `on_room` is called whenever the admitted slots
may have grown (a node admitted, a node's slots raised), so waiting slot loops wake at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from transcriber.node.plugin import refused
from transcriber.node.wire import NODE_INFO, RESOURCE, token_ok, version_mismatch, versions

log = logging.getLogger(__name__)

WATCH_EVERY = 0.5


class Nodes:
    def __init__(
        self,
        client: Any,
        token: str | None,
        on_gone: Callable[[str], None],
        on_room: Callable[[], None],
    ) -> None:
        self._client = client
        self._token = token
        self._on_gone = on_gone
        self._on_room = on_room
        self._slots: dict[str, int] = {}
        self._busy: dict[str, int] = {}
        self._gone: dict[str, asyncio.Event] = {}
        self._refused: set[str] = set()

    def slots(self) -> int:
        return sum(self._slots.values())

    def admitted(self) -> dict[str, int]:
        return dict(self._slots)

    def take(self) -> str | None:
        """The admitted node with the most free slots, now counted busy; None if all are."""
        free = {a: n - self._busy.get(a, 0) for a, n in self._slots.items()}
        if not free or max(free.values()) <= 0:
            return None
        address = max(free, key=lambda a: free[a])
        self._busy[address] = self._busy.get(address, 0) + 1
        return address

    def give_back(self, address: str) -> None:
        if self._busy.get(address, 0) > 0:
            self._busy[address] -= 1

    async def lost(self, address: str) -> None:
        """Returns once the node is gone."""
        await self._gone.setdefault(address, asyncio.Event()).wait()

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not ask the scheduler for its workers")

    async def refresh(self) -> None:
        identity = await self._client.scheduler.identity()
        workers: dict[str, Any] = identity.get("workers", {})
        for address, info in workers.items():
            if address in self._slots:
                self._resize(address, info)
            elif address not in self._refused:
                await self._admit(address, info)
        for address in list(self._slots):
            if address not in workers:
                self.lose(address)
        self._refused &= set(workers)

    async def _admit(self, address: str, info: dict[str, Any]) -> None:
        reason = refusal(self._token, info)
        if reason is None:
            self._slots[address] = _slots(info)
            self._gone[address] = asyncio.Event()
            log.info(
                "node %s (%s) joined: %d slots", address, info.get("name"), self._slots[address]
            )
            self._on_room()
            return
        self._refused.add(address)
        log.error("node %s (%s) refused: %s", address, info.get("name"), reason)
        try:
            await self._client.run(refused, reason, workers=[address])
        except Exception:
            log.info("could not tell node %s why it was refused", address)
        await self._client.retire_workers(workers=[address], close_workers=True)

    def _resize(self, address: str, info: dict[str, Any]) -> None:
        slots, before = _slots(info), self._slots[address]
        if slots != before:
            log.info("node %s now has %d slots (was %d)", address, slots, before)
            self._slots[address] = slots
            if slots > before:
                self._on_room()

    def lose(self, address: str) -> None:
        """The node is gone (the scheduler said so, or a job died with its worker)."""
        if address not in self._slots:
            return
        log.warning("node %s left the cluster", address)
        del self._slots[address]
        self._busy.pop(address, None)
        self._gone.setdefault(address, asyncio.Event()).set()
        self._on_gone(address)


def _slots(info: dict[str, Any]) -> int:
    return int(info.get("resources", {}).get(RESOURCE, 0))


def refusal(token: str | None, info: dict[str, Any]) -> str | None:
    """Why a registering worker may not run jobs, or None when it may."""
    node = info.get(NODE_INFO)
    if not isinstance(node, dict):
        return "not a transcriber node (no node information in its registration)"
    if not token_ok(token, node.get("token")):
        return "it presented a wrong node token"
    theirs = node.get("versions")
    diff = version_mismatch(versions(), theirs if isinstance(theirs, dict) else {})
    if diff is not None:
        return f"its versions differ from the coordinator's ({diff})"
    return None
