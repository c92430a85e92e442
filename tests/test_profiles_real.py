"""Known voices end to end on the real models: the AMI excerpts dev00 and dev01 (the same two
people), through the real server and worker. Each speaker of dev00 is enrolled under the name
of the person the reference RTTM says holds most of its speech; dev01's speakers must then be
named after the right person."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from transcriber.config import Config
from transcriber.worker import assets

from .conftest import ClientFactory, upload, wait_for_stage
from .test_profiles import transcript

pytestmark = pytest.mark.slow


def reference(ami: Path, uri: str) -> list[tuple[float, float, str]]:
    rows = (line.split() for line in (ami / "debug.development.rttm").read_text().splitlines())
    return [(float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows if r and r[1] == uri]


def owners(rttm: str, truth: list[tuple[float, float, str]]) -> dict[str, str]:
    """Each speaker of a task's RTTM -> the person who holds most of its speech."""
    shared: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in rttm.splitlines():
        fields = line.split()
        start, end, who = float(fields[3]), float(fields[3]) + float(fields[4]), fields[7]
        for t_start, t_end, person in truth:
            shared[who][person] += max(0.0, min(end, t_end) - max(start, t_start))
    return {who: max(people, key=lambda p: people[p]) for who, people in shared.items()}


async def run(client: Any, ami: Path, uri: str) -> str:
    body = (ami / f"{uri}.wav").read_bytes()
    snap = await (await upload(client, body, filename=f"{uri}.wav", language="en")).json()
    final = await wait_for_stage(client, snap["id"], {"complete", "failed"}, timeout=900)
    assert final["stage"] == "complete", final["error"]
    return str(snap["id"])


async def test_speakers_enrolled_in_one_meeting_are_named_in_the_next(
    make_client: ClientFactory,
) -> None:
    ami = assets.fetch_ami_excerpts(Config.from_env().models_dir)
    client = await make_client(pipeline="real", model="tiny.en", device="cpu")
    first = await run(client, ami, "dev00")
    rttm = await (await client.get(f"/api/tasks/{first}/diarization.rttm")).text()
    enrolled = owners(rttm, reference(ami, "dev00"))
    assert sorted(enrolled.values()) == ["MEE009", "MEE012"]
    for label, person in enrolled.items():
        resp = await client.post(
            "/api/profiles", json={"task_id": first, "speaker": label, "name": person}
        )
        assert resp.status == 201, await resp.text()
    second = await run(client, ami, "dev01")
    body = await transcript(client, second)
    named = await (await client.get(f"/api/tasks/{second}/diarization.rttm")).text()
    found = owners(named, reference(ami, "dev01"))
    assert sorted(body["speaker_names"].values()) == ["MEE009", "MEE012"], body["speaker_names"]
    for name, person in found.items():
        assert name == person, found
    for match in body["speaker_profiles"].values():
        assert 0.6 <= match["similarity"] < 1.0
    assert "embedding" not in str(body)
