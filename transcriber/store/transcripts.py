"""The SQL of transcripts after the run: revisions, the searchable segments and their index.

Revision 0 of a task is the model's output and never changes; each edit, and each re-run of
diarization, adds the next revision. The `segments` table holds the latest revision's
segments, one row each, and `segments_fts` indexes their text: an FTS5 table over external
content kept in step by triggers, as sqlite-utils' enable_fts(create_triggers=True) makes it.
Deleting a task's row deletes its revisions and segments (and so their index entries).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from transcriber.store.transaction import transaction

MIGRATION = """
CREATE TABLE revisions (
    task_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (task_id, revision)
);
CREATE TABLE segments (
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    speaker TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (task_id, idx)
);
CREATE VIRTUAL TABLE segments_fts USING fts5(
    text, content='segments', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER segments_ai AFTER INSERT ON segments BEGIN
    INSERT INTO segments_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER segments_ad AFTER DELETE ON segments BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER segments_au AFTER UPDATE ON segments BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO segments_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER tasks_transcripts_ad AFTER DELETE ON tasks BEGIN
    DELETE FROM segments WHERE task_id = old.id;
    DELETE FROM revisions WHERE task_id = old.id;
END;
"""

# A segment's rowid is its task's rowid shifted by this many bits, plus the segment's place
# counted from the end: rowid order, which FTS5 walks without sorting, is then newest task
# first and each task's segments in order, and an edit re-inserts rows under the same rowids.
TASK_SHIFT = 20
MAX_SEGMENTS = 1 << TASK_SHIFT

# Marks around each match in a snippet: control characters no transcript holds, replaced by
# <mark> once the rest of the text is HTML-escaped (jobs/search.py).
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"


class BadQuery(Exception):
    """FTS5 could not parse the query."""


@dataclass(frozen=True)
class Revision:
    task_id: str
    revision: int
    attempt: int
    source: str
    created_at: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    task_id: str
    filename: str
    index: int
    start: float
    end: float
    speaker: str | None
    snippet: str


class TranscriptStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def latest(self, task_id: str) -> Revision | None:
        return await self._one(
            "SELECT * FROM revisions WHERE task_id = ? ORDER BY revision DESC LIMIT 1", (task_id,)
        )

    async def get(self, task_id: str, revision: int) -> Revision | None:
        return await self._one(
            "SELECT * FROM revisions WHERE task_id = ? AND revision = ?", (task_id, revision)
        )

    async def _one(self, sql: str, args: tuple[Any, ...]) -> Revision | None:
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Revision(
            row["task_id"],
            row["revision"],
            row["attempt"],
            row["source"],
            row["created_at"],
            json.loads(row["data"]),
        )

    async def add(self, revision: Revision, segments: list[tuple[Any, ...]]) -> None:
        """Save a new revision and make its segments the searchable ones, in one transaction.

        `segments` are (index, start, end, speaker name, text) rows. A revision number that is
        taken raises sqlite3.IntegrityError and changes nothing; a deleted task's saves nothing.
        """
        if len(segments) > MAX_SEGMENTS:
            raise ValueError(f"{len(segments)} segments; the index holds {MAX_SEGMENTS} a task")
        # Only for a task that still exists: an edit that lost the race with a DELETE (or a
        # retention sweep) leaves no revision behind that nothing would ever remove.
        async with transaction(self._db) as db:
            await db.execute(
                "INSERT INTO revisions (task_id, revision, attempt, source, created_at, data)"
                " SELECT id, ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
                (
                    revision.revision,
                    revision.attempt,
                    revision.source,
                    revision.created_at,
                    json.dumps(revision.data, ensure_ascii=False),
                    revision.task_id,
                ),
            )
            await db.execute("DELETE FROM segments WHERE task_id = ?", (revision.task_id,))
            await db.executemany(
                'INSERT INTO segments (rowid, task_id, idx, start, "end", speaker, text)'
                f" SELECT (rowid << {TASK_SHIFT}) + ?, id, ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
                [(MAX_SEGMENTS - 1 - row[0], *row, revision.task_id) for row in segments],
            )

    async def unimported(self, after: str, limit: int) -> list[str]:
        """Up to `limit` complete tasks whose latest run's output is not a revision yet, in id
        order after `after`: a page a caller can resume from even if it imports none of it."""
        async with self._db.execute(
            "SELECT id FROM tasks WHERE stage = 'complete' AND id > ? AND attempt >"
            " COALESCE((SELECT MAX(attempt) FROM revisions WHERE task_id = tasks.id), -1)"
            " ORDER BY id LIMIT ?",
            (after, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [row[0] for row in rows]

    async def search(self, match: str, limit: int, offset: int) -> list[Hit]:
        """Segments whose text matches, newest task first, then in transcript order: the
        rowid order (see TASK_SHIFT), so FTS5 stops after the page instead of sorting every
        match of a common word."""
        try:
            async with self._db.execute(
                'SELECT s.task_id, t.filename, s.idx, s.start, s."end", s.speaker,'
                " snippet(segments_fts, 0, ?, ?, '…', 16)"
                " FROM segments_fts JOIN segments s ON s.rowid = segments_fts.rowid"
                " JOIN tasks t ON t.id = s.task_id"
                " WHERE segments_fts MATCH ?"
                " ORDER BY segments_fts.rowid DESC LIMIT ? OFFSET ?",
                (MARK_OPEN, MARK_CLOSE, match, limit, offset),
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.OperationalError as exc:
            raise BadQuery(str(exc)) from exc
        return [Hit(*row) for row in rows]

    async def indexed_segments(self, task_id: str) -> int:
        async with self._db.execute(
            "SELECT COUNT(*) FROM segments WHERE task_id = ?", (task_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0
