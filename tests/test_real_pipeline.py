"""End to end on the real models, through the real server and its worker process: upload the
three-voice fixture, follow it over the WebSocket, and check text, speakers and DER."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from .conftest import ClientFactory, upload
from .speech_truth import DATA, wer
from .test_ws import follow, receive

pytestmark = pytest.mark.slow

VOICES = DATA / "voices.wav"


def truth_annotation() -> tuple[Annotation, str]:
    turns = json.loads((DATA / "voices.json").read_text())
    reference = Annotation()
    for turn in turns:
        reference[Segment(turn["start"], turn["end"])] = turn["speaker"]
    return reference, " ".join(t["text"] for t in turns)


def rttm_annotation(rttm: str) -> Annotation:
    hypothesis = Annotation()
    for line in rttm.splitlines():
        fields = line.split()
        start, length = float(fields[3]), float(fields[4])
        hypothesis[Segment(start, start + length)] = fields[7]
    return hypothesis


async def test_real_pipeline_end_to_end(make_client: ClientFactory) -> None:
    client = await make_client(pipeline="real", model="tiny.en", device="cpu")
    snap = await (await upload(client, VOICES.read_bytes(), filename="voices.wav")).json()
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
        seen = await follow(ws, snap["id"], timeout=900)
    final = seen[-1]
    assert final["stage"] == "complete", final["error"]
    stages = [s["stage"] for s in seen]
    assert {"transcribing", "aligning", "diarizing"} <= set(stages)
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert final["language"] == "en"
    details = {s["detail"] for s in seen}
    assert any(d.startswith("Segment ") for d in details)
    assert any(d.startswith("Speaker embeddings") for d in details), details

    result = await (await client.get(f"/api/tasks/{snap['id']}/transcript")).json()
    reference, text = truth_annotation()
    hypothesis_text = " ".join(s["text"] for s in result["segments"])
    error_rate = wer(hypothesis_text, text)
    print(f"WER {error_rate:.3f}")
    assert error_rate < 0.15
    assert result["model"] == "tiny.en"
    assert set(result["timings"]) == {"transcribing", "aligning", "diarizing"}
    words = [w for s in result["segments"] for w in s["words"]]
    assert len(words) > 50
    assert all(w["speaker"] in result["speakers"] for w in words)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)

    rttm = await (await client.get(f"/api/tasks/{snap['id']}/diarization.rttm")).text()
    hypothesis = rttm_annotation(rttm)
    uem = Timeline([Segment(0.0, result["duration"])])
    der = DiarizationErrorRate()(reference, hypothesis, uem=uem)
    print(f"speakers {result['speakers']}, DER {der:.3f}")
    assert len(result["speakers"]) == 3
    assert der < 0.2


async def test_silence_gives_an_empty_transcript(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    import wave

    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 300, dtype=np.int16).tobytes())
    client = await make_client(pipeline="real", model="tiny.en", device="cpu")
    snap = await (
        await upload(client, path.read_bytes(), filename="silence.wav", diarize="false")
    ).json()
    async with client.ws_connect("/api/ws") as ws:
        await receive(ws)
        await ws.send_json({"type": "subscribe", "task_id": snap["id"]})
        final: dict[str, Any] = (await follow(ws, snap["id"], timeout=600))[-1]
    assert final["stage"] == "complete", final["error"]
    text = await (
        await client.get(f"/api/tasks/{snap['id']}/transcript", params={"format": "txt"})
    ).text()
    assert text.strip() == ""
