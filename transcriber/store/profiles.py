"""The SQL of known voices: each task's speaker voices, the profiles, their samples, and the
matches a person undid.

An embedding is a float32 blob (192 x 4 bytes). A task's voices are replaced by each run of
diarization and leave with the task (trigger). A sample is a copy of a task's voice: deleting
the task keeps the profile whole; deleting the profile deletes every sample of it (trigger),
so nothing of that person's voice is left in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite
import numpy as np

from transcriber.store.transaction import transaction

MIGRATION = """
CREATE TABLE task_voices (
    task_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    seconds REAL NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (task_id, speaker)
) WITHOUT ROWID;
CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL COLLATE NOCASE UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE profile_samples (
    profile_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    seconds REAL NOT NULL,
    embedding BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX profile_samples_profile ON profile_samples (profile_id);
CREATE TABLE profile_rejections (
    task_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    speaker TEXT NOT NULL,
    PRIMARY KEY (task_id, profile_id)
) WITHOUT ROWID;
CREATE TRIGGER tasks_voices_ad AFTER DELETE ON tasks BEGIN
    DELETE FROM task_voices WHERE task_id = old.id;
    DELETE FROM profile_rejections WHERE task_id = old.id;
END;
CREATE TRIGGER profiles_ad AFTER DELETE ON profiles BEGIN
    DELETE FROM profile_samples WHERE profile_id = old.id;
    DELETE FROM profile_rejections WHERE profile_id = old.id;
END;
"""


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


@dataclass(frozen=True)
class StoredVoice:
    speaker: str
    seconds: float
    embedding: np.ndarray


@dataclass(frozen=True)
class Sample:
    task_id: str
    speaker: str
    seconds: float
    embedding: np.ndarray
    created_at: str


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    created_at: str
    updated_at: str
    samples: tuple[Sample, ...]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.samples)


class ProfileStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def set_voices(self, task_id: str, voices: list[StoredVoice]) -> None:
        """A run's voices replace the task's earlier ones (a re-diarization renumbers them)."""
        async with transaction(self._db) as db:
            await db.execute("DELETE FROM task_voices WHERE task_id = ?", (task_id,))
            await db.executemany(
                "INSERT INTO task_voices (task_id, speaker, seconds, embedding)"
                " SELECT id, ?, ?, ? FROM tasks WHERE id = ?",
                [(v.speaker, v.seconds, to_blob(v.embedding), task_id) for v in voices],
            )

    async def voices(self, task_id: str) -> list[StoredVoice]:
        async with self._db.execute(
            "SELECT speaker, seconds, embedding FROM task_voices WHERE task_id = ?"
            " ORDER BY speaker",
            (task_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [StoredVoice(r[0], float(r[1]), from_blob(r[2])) for r in rows]

    async def profiles(self, profile_id: str | None = None) -> list[Profile]:
        """Every profile with its samples, by name; or only the one with this id."""
        where, args = ("WHERE profile_id = ?", (profile_id,)) if profile_id else ("", ())
        async with self._db.execute(
            "SELECT profile_id, task_id, speaker, seconds, embedding, created_at"
            f" FROM profile_samples {where} ORDER BY rowid",
            args,
        ) as cur:
            rows = await cur.fetchall()
        samples: dict[str, list[Sample]] = {}
        for r in rows:
            sample = Sample(r[1], r[2], float(r[3]), from_blob(r[4]), r[5])
            samples.setdefault(r[0], []).append(sample)
        where = "WHERE id = ?" if profile_id else ""
        async with self._db.execute(
            f"SELECT id, name, created_at, updated_at FROM profiles {where} ORDER BY name, id",
            args,
        ) as cur:
            found = await cur.fetchall()
        return [Profile(r[0], r[1], r[2], r[3], tuple(samples.get(r[0], ()))) for r in found]

    async def name_taken(self, name: str, other_than: str = "") -> bool:
        async with self._db.execute(
            "SELECT 1 FROM profiles WHERE name = ? COLLATE NOCASE AND id != ?", (name, other_than)
        ) as cur:
            return await cur.fetchone() is not None

    async def add(self, profiles: list[Profile]) -> None:
        """Insert profiles with their samples, all in one transaction."""
        async with transaction(self._db) as db:
            for p in profiles:
                await db.execute(
                    "INSERT INTO profiles (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (p.id, p.name, p.created_at, p.updated_at),
                )
                await _insert_samples(db, p.id, p.samples)

    async def add_sample(self, profile_id: str, sample: Sample, when: str) -> None:
        async with transaction(self._db) as db:
            await _insert_samples(db, profile_id, (sample,))
            await db.execute("UPDATE profiles SET updated_at = ? WHERE id = ?", (when, profile_id))

    async def rename(self, profile_id: str, name: str, when: str) -> bool:
        async with transaction(self._db) as db:
            cur = await db.execute(
                "UPDATE profiles SET name = ?, updated_at = ? WHERE id = ?",
                (name, when, profile_id),
            )
        return cur.rowcount == 1

    async def delete(self, profile_id: str) -> bool:
        async with transaction(self._db) as db:
            cur = await db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
        return cur.rowcount == 1

    async def reject(self, task_id: str, profile_id: str, speaker: str) -> None:
        async with transaction(self._db) as db:
            await db.execute(
                "INSERT OR REPLACE INTO profile_rejections (task_id, profile_id, speaker)"
                " VALUES (?, ?, ?)",
                (task_id, profile_id, speaker),
            )

    async def rejected(self, task_id: str) -> set[str]:
        async with self._db.execute(
            "SELECT profile_id FROM profile_rejections WHERE task_id = ?", (task_id,)
        ) as cur:
            return {str(r[0]) for r in await cur.fetchall()}


async def _insert_samples(
    db: aiosqlite.Connection, profile_id: str, samples: tuple[Sample, ...]
) -> None:
    await db.executemany(
        "INSERT INTO profile_samples (profile_id, task_id, speaker, seconds, embedding, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (profile_id, s.task_id, s.speaker, s.seconds, to_blob(s.embedding), s.created_at)
            for s in samples
        ],
    )
