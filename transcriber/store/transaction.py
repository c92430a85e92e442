"""One logical write, one transaction, on a connection every coroutine shares.

The server has one aiosqlite connection, and a commit commits whatever the connection has
pending: without turns, one coroutine's commit could commit half of another's revision, and
a rollback after a full disk could drop another's pending write. So every write goes through
`transaction(db)`: writes on one connection take turns, and each commits whole or not at all.
Reads need no turn.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakKeyDictionary

import aiosqlite


class DiskFull(Exception):
    """A write found the disk full; nothing of it was stored."""


_turns: WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """Run the block's statements as one transaction: committed together when it ends,
    rolled back together on any exception (a full disk raised as DiskFull)."""
    turn = _turns.setdefault(db, asyncio.Lock())
    async with turn:
        try:
            yield db
            await db.commit()
        except sqlite3.OperationalError as exc:
            await db.rollback()
            if "full" in str(exc):
                # SQLite keeps the file whole; the transaction is dropped and may be tried again.
                raise DiskFull(str(exc)) from exc
            raise
        except BaseException:
            await db.rollback()
            raise
