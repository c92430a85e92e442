"""Voice profiles: made from a finished task's speaker, matched with every new diarization.

The worker's diarizing output carries each speaker's voice (worker/job.py VOICES_KEY); when a
run's output becomes a revision (jobs/transcripts/revisions.py), `on_output` moves the voices
to the database and names the speakers it recognises. Matching runs here, in the server,
after the worker returned: profiles added while a task ran count. The profiles stay in memory
as one matrix (Gallery), rebuilt after each change, so matching costs no database read.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from functools import partial
from typing import Any

import numpy as np

from transcriber.jobs.profiles.links import linked, profile_of, unlinked
from transcriber.jobs.profiles.matching import MIN_SECONDS, Gallery, Match, match
from transcriber.jobs.transcripts.edits import labels, printable
from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.protocol.errors import ApiError
from transcriber.protocol.profiles import DIMENSION, MAX_PROFILE_NAME, MAX_SAMPLES
from transcriber.protocol.stages import Stage
from transcriber.store.profiles import Profile, ProfileStore, Sample, StoredVoice
from transcriber.store.task import Task, now_iso

log = logging.getLogger(__name__)


def profile_name(name: object) -> str:
    """A profile's name, checked as a speaker's name is (length, control characters)."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError("BAD_REQUEST", "A profile name must be non-empty text.")
    cleaned = " ".join(name.split())
    if len(cleaned) > MAX_PROFILE_NAME:
        raise ApiError(
            "BAD_REQUEST", f"A profile name may be at most {MAX_PROFILE_NAME} characters."
        )
    return printable(cleaned, "A profile name")


def voices_of_output(raw: object) -> list[StoredVoice]:
    """The voices a worker sent, those that are whole (right size, finite, some speech)."""
    if not isinstance(raw, dict):
        return []
    out = []
    for label, voice in raw.items():
        try:
            vector = np.asarray(voice["embedding"], dtype=np.float32)
            seconds = float(voice["seconds"])
        except (KeyError, TypeError, ValueError):
            continue
        if vector.shape == (DIMENSION,) and np.isfinite(vector).all() and seconds >= 0:
            out.append(StoredVoice(str(label), seconds, vector))
    return out


class Profiles:
    def __init__(self, store: ProfileStore, transcripts: Transcripts, enabled: bool) -> None:
        self.store = store
        self.transcripts = transcripts
        self.enabled = enabled
        self._gallery: tuple[Gallery, dict[str, str]] | None = None

    def check_enabled(self) -> None:
        if not self.enabled:
            raise ApiError("PROFILES_OFF", detail="the server runs with --no-profiles")

    async def gallery(self) -> tuple[Gallery, dict[str, str]]:
        """The profiles as one matrix, and their names by id."""
        if self._gallery is None:
            found = await self.store.profiles()
            self._gallery = (
                Gallery.build(
                    [(p.id, [(s.embedding, s.seconds) for s in p.samples]) for p in found]
                ),
                {p.id: p.name for p in found},
            )
        return self._gallery

    async def refresh(self) -> None:
        """After a change of profiles: the gallery is rebuilt now (about 75 ms for 1,000
        profiles of three samples), so that matching a finished task never waits for it."""
        self._gallery = None
        await self.gallery()

    async def on_output(self, task: Task, raw: object, data: dict[str, Any]) -> dict[str, Any]:
        """A run's output becomes a revision: keep its voices, name the speakers recognised."""
        if raw is None:
            return data
        voices = voices_of_output(raw)
        await self.store.set_voices(task.id, voices)
        if not self.enabled or not task.options.get("match_profiles", True):
            return data
        gallery, names = await self.gallery()
        if not gallery.ids:
            return data
        known = set(labels(data))
        found = match(
            gallery,
            {v.speaker: (v.embedding, v.seconds) for v in voices if v.speaker in known},
            await self.store.rejected(task.id),
        )
        if found:
            log.info("task %s: %d speakers recognised", task.id, len(found))
        return linked(data, found, names)

    async def voice(self, task_id: str, speaker: object) -> tuple[StoredVoice, dict[str, Any]]:
        """A complete task's speaker's voice, and the task's latest transcript data."""
        if not isinstance(speaker, str) or not speaker:
            raise ApiError("BAD_REQUEST", 'Name the speaker by its label, e.g. "SPEAKER_00".')
        task, revision = await self.transcripts.latest(task_id)
        if task.stage != Stage.COMPLETE:
            raise ApiError(
                "NOT_READY",
                f"The task is {task.stage.value}; a voice is taken once it is complete.",
                f"stage={task.stage.value}",
            )
        if not task.options.get("diarize", True) or "turns" not in revision.data:
            raise ApiError("NO_VOICES", detail="diarize=false")
        voices = {v.speaker: v for v in await self.store.voices(task.id)}
        if not voices:
            raise ApiError(
                "NO_VOICES",
                "This task has no speaker voices: it was diarized before voices were kept."
                " Re-run its diarization to keep them.",
            )
        found = voices.get(speaker)
        if found is None or speaker not in labels(revision.data):
            raise ApiError("UNKNOWN_SPEAKER", detail=f"labels: {', '.join(sorted(voices))}")
        if found.seconds < MIN_SECONDS:
            raise ApiError(
                "TOO_LITTLE_SPEECH",
                f"{speaker} speaks {found.seconds:.1f} s; a voice needs at least"
                f" {MIN_SECONDS:g} s of speech.",
                f"seconds={found.seconds}",
            )
        return found, revision.data

    async def require(self, profile_id: str) -> Profile:
        found = await self.store.profiles(profile_id)
        if found:
            return found[0]
        raise ApiError("UNKNOWN_PROFILE", detail=f"id={profile_id[:100]}")

    async def create(self, task_id: str, speaker: object, name: object = None) -> Profile:
        self.check_enabled()
        voice, data = await self.voice(task_id, speaker)
        given = (data.get("speaker_names") or {}).get(voice.speaker, voice.speaker)
        checked = profile_name(given if name is None else name)
        await self._free(checked)
        when = now_iso()
        sample = Sample(task_id, voice.speaker, voice.seconds, voice.embedding, when)
        profile = Profile(secrets.token_hex(8), checked, when, when, (sample,))
        try:
            await self.store.add([profile])
        except sqlite3.IntegrityError as exc:  # the same name, made meanwhile
            raise ApiError("NAME_TAKEN", detail=f"name={checked!r}") from exc
        await self.refresh()
        await self._tie(task_id, voice.speaker, profile)
        return profile

    async def add_sample(self, profile_id: str, task_id: str, speaker: object) -> Profile:
        self.check_enabled()
        profile = await self.require(profile_id)
        if len(profile.samples) >= MAX_SAMPLES:
            raise ApiError("CONFLICT", f"A profile keeps at most {MAX_SAMPLES} samples.")
        voice, _ = await self.voice(task_id, speaker)
        when = now_iso()
        sample = Sample(task_id, voice.speaker, voice.seconds, voice.embedding, when)
        await self.store.add_sample(profile.id, sample, when)
        await self.refresh()
        updated = await self.require(profile_id)
        await self._tie(task_id, voice.speaker, updated)
        return updated

    async def _tie(self, task_id: str, label: str, profile: Profile) -> None:
        """The task's speaker shows the profile's name, marked as its source."""
        tie = partial(
            linked, matches={label: Match(profile.id, 1.0)}, names={profile.id: profile.name}
        )
        try:
            await self.transcripts.change(task_id, None, tie)
        except ApiError as exc:  # the task changed meanwhile: the profile stands
            log.info("task %s: profile %s not shown: %s", task_id, profile.id, exc.code)

    async def _free(self, name: str, other_than: str = "") -> None:
        if await self.store.name_taken(name, other_than):
            raise ApiError("NAME_TAKEN", detail=f"name={name!r}")

    async def rename(self, profile_id: str, name: object) -> Profile:
        self.check_enabled()
        checked = profile_name(name)
        await self.require(profile_id)
        await self._free(checked, profile_id)
        try:
            await self.store.rename(profile_id, checked, now_iso())
        except sqlite3.IntegrityError as exc:
            raise ApiError("NAME_TAKEN", detail=f"name={checked!r}") from exc
        await self.refresh()
        return await self.require(profile_id)

    async def delete(self, profile_id: str) -> None:
        if not await self.store.delete(profile_id):
            raise ApiError("UNKNOWN_PROFILE", detail=f"id={profile_id[:100]}")
        await self.refresh()

    async def unmatch(self, task_id: str, speaker: str) -> dict[str, Any]:
        """ "This is not Anna": the speaker back to its label; this task never gets Anna again."""
        task, revision = await self.transcripts.latest(task_id)
        if task.stage != Stage.COMPLETE:  # the undo is an edit: only of a complete transcript
            raise ApiError(
                "CONFLICT",
                f"The task is {task.stage.value}; a match is undone once it is complete.",
                f"stage={task.stage.value}",
            )
        profile_id = profile_of(revision.data, speaker)
        if profile_id is None:
            if speaker not in labels(revision.data):
                raise ApiError("UNKNOWN_SPEAKER", detail=f"speaker={speaker[:100]}")
            raise ApiError("CONFLICT", f"{speaker} is not matched to a voice profile.")
        await self.store.reject(task_id, profile_id, speaker)
        new = await self.transcripts.change(task_id, None, partial(unlinked, label=speaker))
        return new.data
