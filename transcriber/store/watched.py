"""The SQL of watched folders: each file seen, by its path, with the size and modification
time it had when it was taken and what became of it, so that a restart does not take it again.

States: `taken` (its task is under way), `done` (outputs written), `failed` (its error file
written), `ignored` (not audio: logged once). A file whose size or time changed since is new.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from transcriber.store.task import now_iso
from transcriber.store.transaction import transaction

MIGRATION = """
CREATE TABLE watched_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX watched_files_task ON watched_files (task_id);
CREATE INDEX watched_files_state ON watched_files (state);
"""

_COLUMNS = "path, size, mtime_ns, state, task_id"


@dataclass(frozen=True)
class Seen:
    path: str
    size: int
    mtime_ns: int
    state: str
    task_id: str | None = None


def _seen(row: aiosqlite.Row) -> Seen:
    return Seen(str(row[0]), int(row[1]), int(row[2]), str(row[3]), row[4])


class WatchedStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def get(self, path: str) -> Seen | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM watched_files WHERE path = ?", (path,)
        ) as cur:
            row = await cur.fetchone()
        return _seen(row) if row else None

    async def of_task(self, task_id: str) -> Seen | None:
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM watched_files WHERE task_id = ?", (task_id,)
        ) as cur:
            row = await cur.fetchone()
        return _seen(row) if row else None

    async def taken(self) -> list[Seen]:
        """The files whose task was under way: a restart writes the outputs of those that
        ended meanwhile."""
        async with self._db.execute(
            f"SELECT {_COLUMNS} FROM watched_files WHERE state = 'taken'"
        ) as cur:
            rows = await cur.fetchall()
        return [_seen(r) for r in rows]

    async def put(self, seen: Seen) -> None:
        async with transaction(self._db) as db:
            await db.execute(
                f"INSERT INTO watched_files ({_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(path) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, state = excluded.state,"
                " task_id = excluded.task_id, updated_at = excluded.updated_at",
                (seen.path, seen.size, seen.mtime_ns, seen.state, seen.task_id, now_iso()),
            )

    async def forget(self, path: str) -> None:
        """The file is new again: taken at the next look."""
        async with transaction(self._db) as db:
            await db.execute("DELETE FROM watched_files WHERE path = ?", (path,))
