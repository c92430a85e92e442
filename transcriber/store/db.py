"""All SQL lives here. The main process is the only writer; workers never open the database."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import aiosqlite

from transcriber.protocol.stages import Stage
from transcriber.store.apikeys import MIGRATION as KEYS_MIGRATION
from transcriber.store.live import MIGRATION as LIVE_MIGRATION
from transcriber.store.profiles import MIGRATION as PROFILES_MIGRATION
from transcriber.store.task import Task
from transcriber.store.transaction import transaction
from transcriber.store.transcripts import DELTAS_MIGRATION
from transcriber.store.transcripts import MIGRATION as TRANSCRIPTS_MIGRATION
from transcriber.store.watched import MIGRATION as WATCHED_MIGRATION
from transcriber.store.webhooks import MIGRATION as WEBHOOKS_MIGRATION

log = logging.getLogger(__name__)


# Named, ordered migrations; PRAGMA user_version counts how many have been applied.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "create tasks",
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            stage TEXT NOT NULL,
            progress INTEGER NOT NULL,
            stage_progress INTEGER NOT NULL,
            detail TEXT NOT NULL,
            filename TEXT NOT NULL,
            stored_name TEXT NOT NULL,
            options TEXT NOT NULL,
            duration REAL,
            size INTEGER NOT NULL,
            error TEXT,
            done_stages TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX tasks_created ON tasks (created_at);
        """,
    ),
    (
        "language and per-stage timings",
        """
        ALTER TABLE tasks ADD COLUMN language TEXT;
        ALTER TABLE tasks ADD COLUMN timings TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE tasks ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX tasks_stage ON tasks (stage);
        """,
    ),
    (
        "request key for joining retried OpenAI-style requests",
        """
        ALTER TABLE tasks ADD COLUMN request_key TEXT;
        CREATE INDEX tasks_request_key ON tasks (request_key);
        """,
    ),
    (
        "seq floor for queue positions shown without a write",
        "ALTER TABLE tasks ADD COLUMN seq_floor INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        "media type found by the probe, the only type the file is served back as",
        "ALTER TABLE tasks ADD COLUMN media_type TEXT;",
    ),
    ("transcript revisions, searchable segments and their FTS5 index", TRANSCRIPTS_MIGRATION),
    ("revisions stored as what an edit changed, with a full copy every so often", DELTAS_MIGRATION),
    ("live segments: the text a run sends while it transcribes", LIVE_MIGRATION),
    ("keys per person, and the owner of each task", KEYS_MIGRATION),
    ("webhook deliveries: their state on the task, pending messages kept", WEBHOOKS_MIGRATION),
    ("watched folders: each file seen, and what became of it", WATCHED_MIGRATION),
    ("known voices: speakers' voices, profiles, their samples, undone matches", PROFILES_MIGRATION),
]

COLUMNS = (
    "id, seq, attempt, stage, progress, stage_progress, detail, filename, stored_name, options,"
    " duration, size, error, done_stages, created_at, updated_at, language, timings,"
    " interruptions, request_key, seq_floor, media_type, segments_count, pieces_done, owner,"
    " webhook"
)
_UPDATES = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(",")[1:])


class NewerDatabase(Exception):
    """The database was written by a newer version: this one would misread or damage it."""


async def migrate(db: aiosqlite.Connection) -> int:
    """Apply the migrations not applied yet; return the resulting version."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise NewerDatabase(
            f"the database is at schema version {version}, written by a newer transcriber;"
            f" this version knows schema versions up to {len(MIGRATIONS)}."
            " Run the newer version, or give this one another --data-dir."
        )
    for index, (name, sql) in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("applying migration %d: %s", index, name)
        await db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {index};\nCOMMIT;")
    return len(MIGRATIONS)


def _row_to_task(row: aiosqlite.Row) -> Task:
    return Task(
        id=row["id"],
        seq=max(row["seq"], row["seq_floor"]),
        attempt=row["attempt"],
        stage=Stage(row["stage"]),
        progress=row["progress"],
        stage_progress=row["stage_progress"],
        detail=row["detail"],
        filename=row["filename"],
        stored_name=row["stored_name"],
        options=json.loads(row["options"]),
        duration=row["duration"],
        size=row["size"],
        error=json.loads(row["error"]) if row["error"] else None,
        done_stages=json.loads(row["done_stages"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        language=row["language"],
        timings=json.loads(row["timings"]),
        interruptions=row["interruptions"],
        request_key=row["request_key"],
        seq_floor=row["seq_floor"],
        media_type=row["media_type"],
        segments_count=row["segments_count"],
        pieces_done=row["pieces_done"],
        owner=row["owner"],
        webhook=json.loads(row["webhook"]) if row["webhook"] else None,
    )


def _task_to_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.seq,
        task.attempt,
        task.stage.value,
        task.progress,
        task.stage_progress,
        task.detail,
        task.filename,
        task.stored_name,
        json.dumps(task.options),
        task.duration,
        task.size,
        json.dumps(task.error) if task.error else None,
        json.dumps(task.done_stages),
        task.created_at,
        task.updated_at,
        task.language,
        json.dumps(task.timings),
        task.interruptions,
        task.request_key,
        task.seq_floor,
        task.media_type,
        task.segments_count,
        task.pieces_done,
        task.owner,
        json.dumps(task.webhook) if task.webhook else None,
    )


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection, for the other tables' SQL (store/transcripts.py)."""
        return self._db

    async def close(self) -> None:
        await self._db.close()

    async def save(self, task: Task) -> None:
        """Insert or update the whole row; called before every publish.

        An upsert, not INSERT OR REPLACE: a replace deletes and re-inserts, renumbering the
        rowid that breaks ties in the created order.
        """
        placeholders = ", ".join("?" * len(COLUMNS.split(",")))
        async with transaction(self._db) as db:
            await db.execute(
                f"INSERT INTO tasks ({COLUMNS}) VALUES ({placeholders})"
                f" ON CONFLICT(id) DO UPDATE SET {_UPDATES}",
                _task_to_row(task),
            )

    async def get(self, task_id: str) -> Task | None:
        async with self._db.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)) as cur:
            row = await cur.fetchone()
        return _row_to_task(row) if row else None

    async def page(self, limit: int, offset: int) -> tuple[list[Task], int]:
        rows, total, _ = await self.listing(limit, offset)
        return rows, total

    async def listing(
        self,
        limit: int,
        offset: int = 0,
        before: tuple[str, int] | None = None,
        owner: str | None = None,
    ) -> tuple[list[Task], int, tuple[str, int] | None]:
        """Newest first: a page of tasks (of one owner, if given), the total, and the cursor
        of the next page (None on the last). A cursor (created_at, rowid) holds its place when
        tasks are added or deleted meanwhile, which an offset does not."""
        conditions: list[str] = []
        args: list[object] = []
        if owner is not None:
            conditions.append("owner = ?")
            args.append(owner)
        counted = list(args)
        if before is not None:
            conditions.append("(created_at, rowid) < (?, ?)")
            args.extend(before)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        async with self._db.execute(
            f"SELECT {COLUMNS}, rowid AS row_number FROM tasks {where}"
            " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*args, limit + 1, offset],
        ) as cur:
            rows = list(await cur.fetchall())
        mine = "WHERE owner = ?" if owner is not None else ""
        async with self._db.execute(f"SELECT COUNT(*) FROM tasks {mine}", counted) as cur:
            total = await cur.fetchone()
        cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            cursor = (str(rows[-1]["created_at"]), int(rows[-1]["row_number"]))
        return [_row_to_task(r) for r in rows], int(total[0]) if total else 0, cursor

    async def unfinished(self) -> list[Task]:
        """Tasks that were not in a terminal stage, oldest first (the queue order)."""
        async with self._db.execute(
            f"SELECT {COLUMNS} FROM tasks WHERE stage NOT IN (?, ?, ?) ORDER BY created_at, rowid",
            (Stage.COMPLETE.value, Stage.FAILED.value, Stage.CANCELLED.value),
        ) as cur:
            rows = await cur.fetchall()
        return [_row_to_task(r) for r in rows]

    async def finished_before(self, cutoff: str, limit: int) -> list[str]:
        """Ids of tasks in a terminal stage last changed before `cutoff`, oldest first."""
        async with self._db.execute(
            "SELECT id FROM tasks WHERE stage IN (?, ?, ?) AND updated_at < ?"
            " ORDER BY updated_at, rowid LIMIT ?",
            (Stage.COMPLETE.value, Stage.FAILED.value, Stage.CANCELLED.value, cutoff, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [str(r["id"]) for r in rows]

    async def find_by_key(self, key: str, exclude: str, since: str) -> Task | None:
        """The newest task made since `since` by the same request, not failed or cancelled."""
        async with self._db.execute(
            f"SELECT {COLUMNS} FROM tasks WHERE request_key = ? AND id != ? AND created_at > ?"
            " AND stage NOT IN (?, ?) ORDER BY created_at DESC LIMIT 1",
            (key, exclude, since, Stage.FAILED.value, Stage.CANCELLED.value),
        ) as cur:
            row = await cur.fetchone()
        return _row_to_task(row) if row else None

    async def delete(self, task_id: str) -> None:
        async with transaction(self._db) as db:
            await db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
