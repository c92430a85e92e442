"""The plumbing pipeline: walks the stages with no models, for fast tests of the server.

Never the default: the server uses it only when configured with pipeline="plumbing".
`hang` makes one stage sleep without reporting, for tests of cancel and the watchdog: "STAGE"
is a long library call that Python can still interrupt; "STAGE:stuck" blocks the worker's
interrupt signal too, like a call that never gives control back.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
import zlib
from pathlib import Path
from typing import Any

from transcriber.protocol.stages import Stage
from transcriber.worker.job import VOICES_KEY
from transcriber.worker.pipeline.audio import probe
from transcriber.worker.pipeline.types import LiveText, ProgressFn, Resume, Segment, Transcript

STEPS = 10
log = logging.getLogger(__name__)


class Context:
    def __init__(
        self,
        audio_path: Path,
        stage_seconds: float,
        hang: str | None = None,
        speakers: int = 1,
        live: LiveText | None = None,
        resume: Resume | None = None,
    ) -> None:
        self.live = live
        self.resume = resume
        self.audio_path = audio_path
        self.stage_seconds = stage_seconds
        self.hang = hang
        # Diarizing gives the segments to this many speakers in turn (num_speakers, else 1).
        self.speakers = speakers

    def starting(self, stage: Stage) -> str:
        return "Starting"

    def _transcribe(self, duration: float, progress: ProgressFn) -> Transcript:
        transcript = _transcript(duration)
        kept = self.resume.pieces if self.resume is not None else 0
        start = kept if 0 < kept <= len(transcript.segments) else 0
        if start:
            log.info("resuming after piece %d of %d", start, len(transcript.segments))
        # A resumed run has only the rest to do: it takes that share of the stage's time.
        wait = (
            self.stage_seconds
            / STEPS
            * (len(transcript.segments) - start)
            / len(transcript.segments)
        )
        _transcribe_steps(transcript, start, self.live, wait, progress)
        return transcript

    def run(
        self, stage: Stage, previous: Transcript | None, progress: ProgressFn
    ) -> dict[str, Any]:
        duration = probe(self.audio_path)
        if self.hang is not None and self.hang.split(":")[0] == stage:
            _hang(self.hang.endswith(":stuck"))
        if stage == Stage.TRANSCRIBING:
            previous = self._transcribe(duration, progress)
        else:
            for step in range(1, STEPS + 1):
                _wait(self.stage_seconds / STEPS)
                progress(step * 100 / STEPS, f"Plumbing step {step}/{STEPS}")
        if previous is None:
            previous = _transcript(duration)
        data = previous.to_dict()
        if stage == Stage.ALIGNING:
            for seg in data["segments"]:
                seg["words"] = [
                    {
                        "word": "plumbing",
                        "start": seg["start"],
                        "end": seg["end"],
                        "probability": 1.0,
                        "speaker": None,
                    }
                ]
        if stage == Stage.DIARIZING:
            data["turns"] = [{"start": 0.0, "end": duration, "speaker": "SPEAKER_00"}]
            if self.speakers > 1:
                data["turns"] = []
            for index, seg in enumerate(data["segments"]):
                seg["speaker"] = f"SPEAKER_{index % self.speakers:02d}"
                for word in seg["words"]:
                    word["speaker"] = seg["speaker"]
                if self.speakers > 1:
                    turn = {"start": seg["start"], "end": seg["end"], "speaker": seg["speaker"]}
                    data["turns"].append(turn)
            data[VOICES_KEY] = _voices(data["turns"])
        return data


def _voices(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """A made-up voice per speaker, the same for a label in every task (SPEAKER_00 of two
    plumbing tasks is one person, SPEAKER_01 another), so matching can be tested."""
    voices: dict[str, Any] = {}
    for turn in turns:
        label = turn["speaker"]
        if label not in voices:
            rng = random.Random(zlib.crc32(label.encode()))
            vector = [rng.gauss(0.0, 1.0) for _ in range(192)]
            norm = sum(x * x for x in vector) ** 0.5
            voices[label] = {"embedding": [round(x / norm, 6) for x in vector], "seconds": 0.0}
        voices[label]["seconds"] += turn["end"] - turn["start"]
    return voices


def _transcribe_steps(
    transcript: Transcript, start: int, live: LiveText | None, wait: float, progress: ProgressFn
) -> None:
    """The steps of the transcribing stage, its segments handed to `live` as they come due;
    each segment is a piece of its own, so a resumed run starts after the last one sent."""
    todo = transcript.segments[start:]
    sent = 0
    for step in range(1, STEPS + 1):
        _wait(wait)
        due = -(-step * len(todo) // STEPS)
        for segment in todo[sent:due]:
            if live is not None:
                live.segment(segment.id, segment)
                live.piece_done(segment.id, transcript.language)
        sent = due
        progress(step * 100 / STEPS, f"Plumbing step {step}/{STEPS}")


def _wait(seconds: float) -> None:
    # TRANSCRIBER_PLUMBING_BUSY makes each step use a core, for benchmarks of CPU-bound work
    # spread over machines (bench/bench_dask.py); otherwise a step only waits.
    if not os.environ.get("TRANSCRIBER_PLUMBING_BUSY"):
        time.sleep(seconds)
        return
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _hang(stuck: bool) -> None:
    if stuck:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    time.sleep(24 * 3600)


def _transcript(duration: float) -> Transcript:
    count = max(1, min(5, int(duration // 2)))
    step = duration / count
    segments = [
        Segment(i, round(i * step, 3), round((i + 1) * step, 3), f"Plumbing segment {i + 1}.")
        for i in range(count)
    ]
    return Transcript("en", duration, "plumbing", segments)
