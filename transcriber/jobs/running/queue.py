"""The pending tasks, in order. A position is computed when asked for, never stored per dequeue.

Each task gets a ticket, increasing with every put; a task's position is the number of
waiting tickets up to its own, found by bisection. put, get and remove cost the same with 10
or 5,000 tasks waiting (a list shift of a few microseconds aside).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools


def ordinal_in_queue(position: int) -> str:
    if position == 1:
        return "Next in queue"
    teen = 11 <= position % 100 <= 13
    suffix = "th" if teen else {1: "st", 2: "nd", 3: "rd"}.get(position % 10, "th")
    return f"{position}{suffix} in queue"


class JobQueue:
    def __init__(self) -> None:
        self._tickets: list[int] = []
        self._ticket_of: dict[str, int] = {}
        self._task_of: dict[int, str] = {}
        self._counter = itertools.count(1)
        self._ready = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._tickets)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ticket_of

    def position(self, task_id: str) -> int | None:
        """1 for the task that starts next; None when the task is not waiting."""
        ticket = self._ticket_of.get(task_id)
        if ticket is None:
            return None
        return bisect.bisect_left(self._tickets, ticket) + 1

    async def put(self, task_id: str) -> int:
        """Add a task at the end (once); returns its position."""
        async with self._ready:
            if task_id not in self._ticket_of:
                ticket = next(self._counter)
                self._tickets.append(ticket)
                self._ticket_of[task_id] = ticket
                self._task_of[ticket] = task_id
                self._ready.notify()
            return bisect.bisect_left(self._tickets, self._ticket_of[task_id]) + 1

    async def get(self) -> str:
        """Wait for a task and take the first one."""
        async with self._ready:
            await self._ready.wait_for(lambda: bool(self._tickets))
            ticket = self._tickets.pop(0)
            task_id = self._task_of.pop(ticket)
            del self._ticket_of[task_id]
            return task_id

    def remove(self, task_id: str) -> bool:
        ticket = self._ticket_of.pop(task_id, None)
        if ticket is None:
            return False
        del self._task_of[ticket]
        del self._tickets[bisect.bisect_left(self._tickets, ticket)]
        return True

    def waiting(self) -> list[str]:
        return [self._task_of[t] for t in self._tickets]
