"""A transcript's speakers tied to profiles, as plain functions of its data: speaker_names
holds the name shown, speaker_profiles {label: {"profile_id", "similarity"}} says the speaker
was recognised (or enrolled) as that profile."""

from __future__ import annotations

from typing import Any

from transcriber.jobs.profiles.matching import Match


def linked(
    data: dict[str, Any], matches: dict[str, Match], names: dict[str, str]
) -> dict[str, Any]:
    """The data with each matched label named after its profile and marked as recognised."""
    if not matches:
        return data
    speaker_names = dict(data.get("speaker_names") or {})
    profiles = dict(data.get("speaker_profiles") or {})
    for label, found in matches.items():
        speaker_names[label] = names[found.profile_id]
        profiles[label] = {"profile_id": found.profile_id, "similarity": found.similarity}
    return {**data, "speaker_names": speaker_names, "speaker_profiles": profiles}


def unlinked(data: dict[str, Any], label: str) -> dict[str, Any]:
    """The label back to its own name, no longer tied to a profile."""
    speaker_names = dict(data.get("speaker_names") or {})
    profiles = dict(data.get("speaker_profiles") or {})
    speaker_names.pop(label, None)
    profiles.pop(label, None)
    return {**data, "speaker_names": speaker_names, "speaker_profiles": profiles}


def profile_of(data: dict[str, Any], label: str) -> str | None:
    found = (data.get("speaker_profiles") or {}).get(label)
    return str(found["profile_id"]) if found else None
