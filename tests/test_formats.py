"""Transcript files, checked with real SRT and WebVTT parsers."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import srt
import webvtt

from transcriber.worker.pipeline.formats import render, to_rttm

DATA: dict[str, Any] = {
    "language": "en",
    "duration": 3725.5,
    "model": "tiny.en",
    "segments": [
        {
            "id": 0,
            "start": 0.0,
            "end": 2.5,
            "text": " Hello there.",
            "speaker": "SPEAKER_00",
            "words": [],
        },
        {
            "id": 1,
            "start": 2.5,
            "end": 3.25,
            "text": " General <Kenobi>.",
            "speaker": "SPEAKER_01",
            "words": [],
        },
        {
            "id": 2,
            "start": 3723.0,
            "end": 3725.5,
            "text": " Later.",
            "speaker": "SPEAKER_01",
            "words": [],
        },
    ],
}


def test_srt_parses_with_speakers_and_hours() -> None:
    subs = list(srt.parse(render("srt", DATA, {})))
    assert [s.content for s in subs] == [
        "[SPEAKER_00] Hello there.",
        "[SPEAKER_01] General <Kenobi>.",
        "[SPEAKER_01] Later.",
    ]
    assert subs[2].start == timedelta(hours=1, minutes=2, seconds=3)
    assert subs[1].end == timedelta(seconds=3.25)


def test_vtt_parses_with_voice_tags() -> None:
    captions = webvtt.from_buffer(io.StringIO(render("vtt", DATA, {})))
    assert [c.start for c in captions] == ["00:00:00.000", "00:00:02.500", "01:02:03.000"]
    assert [c.voice for c in captions] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    # Escaped, or a reader would take <Kenobi> for a tag.
    assert captions[1].text == "General &lt;Kenobi&gt;."


def test_txt_tsv_json_rttm() -> None:
    assert render("txt", DATA, {}) == (
        "SPEAKER_00: Hello there.\nSPEAKER_01: General <Kenobi>.\nLater.\n"
    )
    assert render("tsv", DATA, {}).splitlines()[2] == "2500\t3250\tSPEAKER_01\tGeneral <Kenobi>."
    body = render("json", DATA, {"transcribing": 1.5})
    assert '"speakers": [\n  "SPEAKER_00",\n  "SPEAKER_01"\n ]' in body
    turns = [{"start": 0.5, "end": 2.25, "speaker": "SPEAKER_00"}]
    assert to_rttm(turns, "t1") == "SPEAKER t1 1 0.500 1.750 <NA> <NA> SPEAKER_00 <NA> <NA>\n"
