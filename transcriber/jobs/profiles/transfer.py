"""Export and import of voice profiles: the one document that carries their embeddings out
of the server (to move people to another one). An import is all or nothing: one bad profile,
one name taken, and nothing is stored."""

from __future__ import annotations

import secrets
import sqlite3

import numpy as np
from pydantic import ValidationError

from transcriber.jobs.profiles.profiles import Profiles, profile_name
from transcriber.protocol.errors import ApiError
from transcriber.protocol.profiles import (
    ExportedProfile,
    ExportedSample,
    ProfileExport,
)
from transcriber.store.profiles import Profile, Sample
from transcriber.store.task import now_iso


async def export(profiles: Profiles) -> ProfileExport:
    found = await profiles.store.profiles()
    return ProfileExport(
        profiles=[
            ExportedProfile(
                name=p.name,
                samples=[
                    ExportedSample(
                        embedding=[round(float(x), 7) for x in s.embedding],
                        seconds=s.seconds,
                        task_id=s.task_id,
                        speaker=s.speaker,
                        created_at=s.created_at,
                    )
                    for s in p.samples
                ],
            )
            for p in found
        ]
    )


def _document(body: object) -> ProfileExport:
    try:
        return ProfileExport.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ApiError(
            "BAD_REQUEST",
            f"This is not a voice profile export: {where}: {first['msg']}.",
            f"{exc.error_count()} problem(s); first at {where}: {first['type']}",
        ) from exc


async def import_profiles(profiles: Profiles, body: object) -> list[Profile]:
    """Store every profile of an export; 409 NAME_TAKEN when one's name is in use."""
    profiles.check_enabled()
    document = _document(body)
    names = [profile_name(p.name) for p in document.profiles]
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen or await profiles.store.name_taken(name):
            raise ApiError("NAME_TAKEN", detail=f"name={name!r}")
        seen.add(name.casefold())
    when = now_iso()
    made = [
        Profile(
            secrets.token_hex(8),
            name,
            when,
            when,
            tuple(
                Sample(
                    s.task_id,
                    s.speaker,
                    s.seconds,
                    np.array(s.embedding, dtype=np.float32),
                    s.created_at or when,
                )
                for s in p.samples
            ),
        )
        for name, p in zip(names, document.profiles, strict=True)
    ]
    try:
        await profiles.store.add(made)
    except sqlite3.IntegrityError as exc:
        raise ApiError("NAME_TAKEN", detail="a name was taken meanwhile") from exc
    await profiles.refresh()
    return made
