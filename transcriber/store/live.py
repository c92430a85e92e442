"""The SQL of live segments: the text a run sends while it transcribes, stored before it is
published, so a second viewer, a reconnect and a restart all see every segment.

One row a segment, numbered from 0 across the file, with the piece of the audio it came from
(worker/pipeline/transcribe.py cuts long audio into pieces of about 5 minutes). A run that
resumes inside the transcribing stage keeps the rows of the pieces it finished and sends the
rest again. The final transcript, once complete, is a revision (store/transcripts.py); these
rows stay until the task is deleted (a cancelled or failed run's text stays readable).
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from transcriber.store.transaction import transaction

MIGRATION = """
CREATE TABLE live_segments (
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    piece INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    text TEXT NOT NULL,
    words TEXT NOT NULL,
    PRIMARY KEY (task_id, idx)
) WITHOUT ROWID;
CREATE TRIGGER tasks_live_ad AFTER DELETE ON tasks BEGIN
    DELETE FROM live_segments WHERE task_id = old.id;
END;
ALTER TABLE tasks ADD COLUMN segments_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN pieces_done INTEGER NOT NULL DEFAULT 0;
"""

# Read at most this many segments at once (a page of GET .../segments, a WebSocket catch-up).
PAGE = 1000


def _row(segment: dict[str, Any], piece: int, task_id: str) -> tuple[Any, ...]:
    words = json.dumps(segment.get("words") or [], ensure_ascii=False)
    return (
        task_id,
        segment["index"],
        piece,
        segment["start"],
        segment["end"],
        segment["text"],
        words,
    )


class LiveSegments:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def add(self, task_id: str, piece: int, segments: list[dict[str, Any]]) -> None:
        """Store (or replace, for a resumed run) segments of one piece, in one transaction;
        nothing for a task that no longer exists."""
        async with transaction(self._db) as db:
            await db.executemany(
                'INSERT OR REPLACE INTO live_segments (task_id, idx, piece, start, "end", text,'
                " words) SELECT ?, ?, ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
                [(*_row(s, piece, task_id), task_id) for s in segments],
            )

    async def drop_from_piece(self, task_id: str, piece: int) -> None:
        """Forget the segments of `piece` and after: a run that starts there sends them again."""
        async with transaction(self._db) as db:
            await db.execute(
                "DELETE FROM live_segments WHERE task_id = ? AND piece >= ?", (task_id, piece)
            )

    async def after(self, task_id: str, index: int, limit: int = PAGE) -> list[dict[str, Any]]:
        """The segments numbered above `index`, in order, at most `limit`."""
        async with self._db.execute(
            'SELECT idx, start, "end", text, words FROM live_segments'
            " WHERE task_id = ? AND idx > ? ORDER BY idx LIMIT ?",
            (task_id, index, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            {
                "index": row[0],
                "start": row[1],
                "end": row[2],
                "text": row[3],
                "speaker": None,
                "words": json.loads(row[4]),
                "final": False,
            }
            for row in rows
        ]

    async def pieces(self, task_id: str, before: int) -> list[dict[str, Any]]:
        """Every segment of the pieces before `before`, in order: what a resumed run keeps."""
        async with self._db.execute(
            'SELECT idx, start, "end", text FROM live_segments'
            " WHERE task_id = ? AND piece < ? ORDER BY idx",
            (task_id, before),
        ) as cur:
            rows = await cur.fetchall()
        return [{"index": r[0], "start": r[1], "end": r[2], "text": r[3]} for r in rows]
