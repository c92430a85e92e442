"""The SQL of transcripts after the run: revisions, the searchable segments and their index.

Revision 0 of a task is the model's output and never changes; each edit, and each re-run of
diarization, adds the next revision. The `segments` table holds the latest revision's
segments, one row each, and `segments_fts` indexes their text: an FTS5 table over external
content kept in step by triggers, as sqlite-utils' enable_fts(create_triggers=True) makes it.
Deleting a task's row deletes its revisions and segments (and so their index entries).

A revision row is of one of two kinds. `full`: the whole transcript (revision 0, each re-run
of diarization, which changes every segment, and the edit FULL_EVERY revisions after the last
full row). `delta`: what
one edit changed, {"segments": {"<index>": segment, ...}, "speaker_names": {...}} (the
segments it replaced, whole; the names only when they changed). A revision reads as the
nearest full row at or below it with the deltas after it applied in order. An edit updates
only the `segments` rows it changed; a row whose text stays (a speaker moved or renamed) keeps
its index entry.
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

# Existing revisions are full copies. The partial index finds a revision's full row without
# reading the rows between (a full row's data spans overflow pages that reading `kind`, stored
# after it, would walk). A speaker's name is in its rows, so a rename updates them: the index
# entries follow only a change of text.
DELTAS_MIGRATION = """
ALTER TABLE revisions ADD COLUMN kind TEXT NOT NULL DEFAULT 'full';
CREATE INDEX revisions_full ON revisions (task_id, revision) WHERE kind = 'full';
DROP TRIGGER segments_au;
CREATE TRIGGER segments_au AFTER UPDATE OF text ON segments WHEN old.text IS NOT new.text BEGIN
    INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO segments_fts (rowid, text) VALUES (new.rowid, new.text);
END;
"""

# The edit FULL_EVERY revisions after a full one is stored full, so a read applies at most
# FULL_EVERY - 1 deltas. A delta is one segment (about 1.5 KB) or the names: replaying 49 adds
# about 1 ms to any read (a 3-hour transcript's full copy takes about 50 ms to read, a
# 10-minute one's 3), while the full copies add 1/50 of a transcript per edit: 2% of what a
# full copy per edit stored (docs/benchmarks.md, bench_edits.py).
FULL_EVERY = 50
_LAST = 1 << 62  # above every revision number: "no upper bound"

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
        return await self._read(task_id, _LAST)

    async def get(self, task_id: str, revision: int) -> Revision | None:
        found = await self._read(task_id, revision)
        return found if found is not None and found.revision == revision else None

    async def _read(self, task_id: str, upto: int) -> Revision | None:
        """The highest revision at or below `upto`: its full row, then the deltas after it."""
        async with self._db.execute(
            "SELECT * FROM revisions WHERE task_id = ? AND revision <= ? AND revision >="
            " (SELECT MAX(revision) FROM revisions"
            "  WHERE task_id = ? AND kind = 'full' AND revision <= ?)"
            " ORDER BY revision",
            (task_id, upto, task_id, upto),
        ) as cur:
            rows = list(await cur.fetchall())
        if not rows:
            return None
        data = json.loads(rows[0]["data"])
        for row in rows[1:]:
            _replay(data, json.loads(row["data"]))
        last = rows[-1]
        return Revision(
            task_id, last["revision"], last["attempt"], last["source"], last["created_at"], data
        )

    async def add(self, revision: Revision, segments: list[tuple[Any, ...]]) -> bool:
        """Save a new revision and make its segments the searchable ones, in one transaction.

        `segments` are (index, start, end, speaker name, text) rows. A revision number that is
        taken raises sqlite3.IntegrityError and changes nothing; a deleted task's saves nothing
        and returns False.
        """
        if len(segments) > MAX_SEGMENTS:
            raise ValueError(f"{len(segments)} segments; the index holds {MAX_SEGMENTS} a task")
        async with transaction(self._db) as db:
            saved = await _insert(db, revision, "full", revision.data)
            await db.execute("DELETE FROM segments WHERE task_id = ?", (revision.task_id,))
            await db.executemany(
                'INSERT INTO segments (rowid, task_id, idx, start, "end", speaker, text)'
                f" SELECT (rowid << {TASK_SHIFT}) + ?, id, ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
                [(MAX_SEGMENTS - 1 - row[0], *row, revision.task_id) for row in segments],
            )
        return saved

    async def add_edit(
        self, revision: Revision, previous: dict[str, Any], rows: list[tuple[Any, ...]]
    ) -> bool:
        """Save an edit of the latest revision (whose data is `previous`): what it changed, or
        the whole transcript when the last full row is FULL_EVERY revisions back; and update
        the `segments` rows it changed (`rows`, as for add), in one transaction. False when
        the task is deleted (nothing saved).

        ValueError when the edit changed anything but segments (not their number) and names.
        """
        delta = _delta(previous, revision.data)
        async with transaction(self._db) as db:
            async with db.execute(
                "SELECT MAX(revision) FROM revisions WHERE task_id = ? AND kind = 'full'",
                (revision.task_id,),
            ) as cur:
                row = await cur.fetchone()
            base = row[0] if row else None
            if base is None or revision.revision - base >= FULL_EVERY:
                saved = await _insert(db, revision, "full", revision.data)
            else:
                saved = await _insert(db, revision, "delta", delta)
            await db.executemany(
                'UPDATE segments SET start = ?, "end" = ?, speaker = ?, text = ?'
                " WHERE task_id = ? AND idx = ?",
                [(*changed[1:], revision.task_id, changed[0]) for changed in rows],
            )
        return saved

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

    async def search(
        self, match: str, limit: int, offset: int, owner: str | None = None
    ) -> list[Hit]:
        """Segments whose text matches (in `owner`'s tasks, if given), newest task first, then
        in transcript order: the rowid order (see TASK_SHIFT), so FTS5 stops after the page
        instead of sorting every match of a common word."""
        try:
            async with self._db.execute(
                'SELECT s.task_id, t.filename, s.idx, s.start, s."end", s.speaker,'
                " snippet(segments_fts, 0, ?, ?, '…', 16)"
                " FROM segments_fts JOIN segments s ON s.rowid = segments_fts.rowid"
                " JOIN tasks t ON t.id = s.task_id"
                " WHERE segments_fts MATCH ? AND (? IS NULL OR t.owner = ?)"
                " ORDER BY segments_fts.rowid DESC LIMIT ? OFFSET ?",
                (MARK_OPEN, MARK_CLOSE, match, owner, owner, limit, offset),
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


async def _insert(
    db: aiosqlite.Connection, revision: Revision, kind: str, data: dict[str, Any]
) -> bool:
    # Only for a task that still exists: an edit that lost the race with a DELETE (or a
    # retention sweep) leaves no revision behind that nothing would ever remove.
    cursor = await db.execute(
        "INSERT INTO revisions (task_id, revision, attempt, source, created_at, kind, data)"
        " SELECT id, ?, ?, ?, ?, ?, ? FROM tasks WHERE id = ?",
        (
            revision.revision,
            revision.attempt,
            revision.source,
            revision.created_at,
            kind,
            json.dumps(data, ensure_ascii=False),
            revision.task_id,
        ),
    )
    return cursor.rowcount == 1


_DELTA_KEYS = ("segments", "speaker_names", "speaker_profiles")
# What an edit may replace whole besides segments: names, and the speakers tied to profiles.
_WHOLE_KEYS = ("speaker_names", "speaker_profiles")


def _delta(previous: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What changed from `previous` to `data`, in the form _replay applies."""
    old, new = previous["segments"], data["segments"]
    rest = [{k: v for k, v in d.items() if k not in _DELTA_KEYS} for d in (previous, data)]
    dropped = any(k in previous and k not in data for k in _WHOLE_KEYS)
    if len(old) != len(new) or rest[0] != rest[1] or dropped:
        raise ValueError("an edit changes segments (not how many) and speaker names only")
    # An edit copies only what it changes: the identity test skips the rest without a compare.
    delta: dict[str, Any] = {
        "segments": {
            str(index): segment
            for index, (was, segment) in enumerate(zip(old, new, strict=True))
            if segment is not was and segment != was
        }
    }
    for key in _WHOLE_KEYS:
        if previous.get(key) != data.get(key):
            delta[key] = data[key]
    return delta


def _replay(data: dict[str, Any], delta: dict[str, Any]) -> None:
    """Apply a delta to a transcript read from its full row (in place: nothing shares it)."""
    segments = data["segments"]
    for index, segment in delta["segments"].items():
        segments[int(index)] = segment
    for key in _WHOLE_KEYS:
        if key in delta:
            data[key] = delta[key]
