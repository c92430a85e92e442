"""The transcript as it is decoded, on a real model: a restart resumes inside the transcribing
stage. A 14-minute file of real meeting speech is cut into three pieces of about 5 minutes
(worker/pipeline/transcribe.py, PIECE_SECONDS: a last piece may run to 1.5 times that, so 12
minutes would give this file only two pieces); the server is killed with SIGKILL while the
third piece is being decoded and started again. The finished transcript keeps the first two
pieces' segments as the first run stored them, and the run after the restart decodes only the
rest: its transcribing time is well under what the whole file took the first run.

The plumbing side of the same restart is in test_live.py.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from transcriber.config import Config
from transcriber.worker import assets
from transcriber.worker.pipeline.audio import load_audio
from transcriber.worker.pipeline.transcribe import PIECE_SECONDS, SAMPLE_RATE, pieces

from .serverproc import ServerProcess

pytestmark = pytest.mark.slow

MINUTES = 14  # the 14 AMI excerpts twice
# Word timings would let the aligning stage move segment bounds; without them the final
# transcript's segments are the transcribing stage's own, compared as they are.
OPTIONS = "diarize=false&word_timestamps=false"


def ami_concatenation(folder: Path, out: Path, seconds: float) -> Path:
    """The AMI excerpts (30 s of meeting speech each) one after another, repeated to `seconds`."""
    excerpts = sorted(p for p in folder.glob("*.wav") if p.stem != "empty")
    listing = out.with_suffix(".txt")
    rounds = int(seconds // (30 * len(excerpts))) + 1
    listing.write_text("".join(f"file '{p}'\n" for p in excerpts * rounds))
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe"]
    command += ["0", "-i", str(listing), "-t", str(seconds), "-ar", "16000", "-ac", "1", str(out)]
    subprocess.run(command, check=True)
    return out


@pytest.fixture(scope="module")
def meeting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ami = assets.fetch_ami_excerpts(Config.from_env().models_dir)
    out = tmp_path_factory.mktemp("ami") / "meeting.wav"
    return ami_concatenation(ami, out, MINUTES * 60)


async def get(session: aiohttp.ClientSession, url: str, **params: Any) -> dict[str, Any]:
    async with session.get(url, params=params) as resp:
        assert resp.status == 200, await resp.text()
        page: dict[str, Any] = await resp.json()
        return page


async def test_a_restart_in_the_third_piece_keeps_the_first_two(
    tmp_path: Path, meeting: Path
) -> None:
    cuts = pieces(load_audio(meeting), PIECE_SECONDS)
    assert len(cuts) == 3
    third = cuts[2][0] / SAMPLE_RATE  # where the third piece starts, in seconds
    server = ServerProcess(tmp_path / "data", "--model", "tiny.en", "--device", "cpu").start()
    try:
        async with aiohttp.ClientSession() as session:
            post = f"{server.url}/api/tasks?filename=meeting.wav&{OPTIONS}"
            with meeting.open("rb") as body:
                async with session.post(post, data=body) as resp:
                    assert resp.status in (200, 201, 202), await resp.text()
                    task_id = (await resp.json())["id"]
            begun = time.monotonic()
            url = f"{server.url}/api/tasks/{task_id}/segments"
            stored: list[dict[str, Any]] = []
            while not stored or stored[-1]["start"] < third:
                page = await get(session, url, after=len(stored) - 1, wait=30)
                assert page["stage"] in ("queued", "transcribing"), page["stage"]
                stored += page["segments"]
            # Decoded up to the third piece's start in this long: the whole file at this rate.
            first_run = (time.monotonic() - begun) * (MINUTES * 60) / third
            server.stop(signal.SIGKILL)
            server.start()
            while True:
                snap = await get(session, f"{server.url}/api/tasks/{task_id}", wait=30)
                if snap["stage"] in ("complete", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.5)
            assert (snap["stage"], snap["attempt"]) == ("complete", 2), snap["error"]
            final = await get(session, url)
            transcript = await get(
                session, f"{server.url}/api/tasks/{task_id}/transcript", format="json"
            )
    finally:
        server.stop()

    def kept(segments: list[dict[str, Any]]) -> list[tuple[int, float, float, str]]:
        return [
            (s["index"], s["start"], s["end"], s["text"]) for s in segments if s["start"] < third
        ]

    before = kept(stored)
    # Both finished pieces were stored before the kill, the second one too.
    assert before and max(s[1] for s in before) >= cuts[1][0] / SAMPLE_RATE
    assert final["final"] and len(final["segments"]) == final["segments_count"]
    assert kept(final["segments"]) == before  # text and times, as the first run stored them
    assert [s["index"] for s in final["segments"]] == list(range(len(final["segments"])))
    assert final["segments"][-1]["start"] >= third  # the third piece was decoded after all
    assert "resuming after piece 2 of 3" in server.log.read_text()  # the worker's own word
    resumed = transcript["timings"]["transcribing"]
    print(
        f"pieces start at {[round(c[0] / SAMPLE_RATE, 1) for c in cuts]} s; {len(before)} of "
        f"{len(final['segments'])} segments kept; the first run's rate: {first_run:.1f} s for "
        f"the whole file; the resumed run: {resumed:.1f} s"
    )
    # The third piece is about a quarter of the audio (3.5 of 14 minutes); a run that started
    # over would take about the whole file's time. Half of it leaves room for a busier machine.
    assert resumed < 0.5 * first_run
