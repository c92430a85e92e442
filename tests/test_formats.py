"""Transcript files, checked with real SRT and WebVTT parsers."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import srt
import webvtt
from docx import Document
from hypothesis import given, settings
from hypothesis import strategies as st

from transcriber import formats
from transcriber.formats import FORMATS
from transcriber.formats.documents import to_docx, to_md
from transcriber.formats.text import to_rttm
from transcriber.store.task import Task


def render(fmt: str, data: dict[str, Any], timings: dict[str, float]) -> str:
    """A text format through the one table, as the download route renders it."""
    task = Task(id="t", filename="talk.wav", stored_name="s", timings=timings)
    return formats.render(fmt, task, data).decode()


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


def test_json_lists_the_speakers_of_the_lines_in_order_of_appearance() -> None:
    """As VoxConverse's aepyx came out: SPEAKER_00 has turns of its own but no words."""
    turns = [
        {"start": 0.0, "end": 1.0, "speaker": "SPEAKER_02"},
        {"start": 0.5, "end": 3.5, "speaker": "SPEAKER_00"},
        {"start": 1.0, "end": 3.0, "speaker": "SPEAKER_01"},
    ]
    lines = [("SPEAKER_02", 0.0), ("SPEAKER_01", 1.0), ("SPEAKER_02", 2.0)]
    segments = [
        {"id": i, "start": at, "end": at + 1, "text": "x", "speaker": who}
        for i, (who, at) in enumerate(lines)
    ]
    data = {**DATA, "segments": segments, "turns": turns}
    assert json.loads(render("json", data, {}))["speakers"] == ["SPEAKER_02", "SPEAKER_01"]
    # The RTTM is diarization's own account: every speaker it heard.
    assert [line.split()[7] for line in to_rttm(turns, "t").splitlines()] == [
        "SPEAKER_02",
        "SPEAKER_00",
        "SPEAKER_01",
    ]


# Any text that can be stored, with a good share of the characters XML cannot hold. Lone
# surrogates cannot be: neither UTF-8 files nor SQLite take them, and the edits refuse them.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs"]),
        st.sampled_from("\x00\x01\x07\x0b\x1f\ufffe\uffff\t\r\n "),
    ),
    min_size=1,
)


def xml_chars(text: str) -> str:
    """What XML 1.0 allows (its Char production)."""
    return "".join(
        c
        for c in text
        if c in "\t\n\r"
        or 0x20 <= ord(c) <= 0xD7FF
        or 0xE000 <= ord(c) <= 0xFFFD
        or ord(c) >= 0x10000
    )


@settings(max_examples=60, deadline=None)
@given(text=ANY_TEXT, speaker=ANY_TEXT, filename=ANY_TEXT)
def test_every_export_takes_any_stored_text(text: str, speaker: str, filename: str) -> None:
    segment = {"id": 0, "start": 0.0, "end": 1.0, "text": text, "speaker": speaker, "words": []}
    data = {"language": "en", "duration": 1.0, "model": "m", "segments": [segment]}
    task = Task(id="t", filename=filename, stored_name="s", created_at="2026-01-02T03:04:05Z")
    folded = " ".join(text.split())
    docx = Document(io.BytesIO(to_docx(task, data)))
    name = xml_chars(" ".join(speaker.split()))
    assert docx.paragraphs[2].text == f"{name} [0:00:00]\n{xml_chars(folded)}"
    md = to_md(task, data)
    assert md.endswith(folded.translate({ord(c): "\\" + c for c in "\\`*_[]<>#|~"}) + "\n")
    for fmt in FORMATS:
        assert formats.render(fmt, task, data)
    assert json.loads(render("json", data, {}))["segments"][0]["text"] == text
    to_rttm([{"start": 0.0, "end": 1.0, "speaker": speaker}], task.id).encode()
