"""Transcript files for programs: json (close to WhisperX's), txt, srt, vtt, tsv, and RTTM."""

from __future__ import annotations

import json
from typing import Any


def speakers(data: dict[str, Any]) -> list[str]:
    """The speakers of the segments, in order of first appearance: the page calls the n-th of
    them "Speaker n". A label diarization found but gave no words is not among them (the RTTM
    keeps its turns)."""
    return list(dict.fromkeys(s["speaker"] for s in data["segments"] if s.get("speaker")))


def to_json(data: dict[str, Any], timings: dict[str, float]) -> str:
    body = {
        "language": data["language"],
        "duration": data["duration"],
        "model": data["model"],
        "speakers": speakers(data),
        "timings": timings,
        "segments": data["segments"],
    }
    # After the run: which revision this is, and the names given to the labels.
    for key in ("revision", "source", "speaker_names", "speaker_profiles"):
        if key in data:
            body[key] = data[key]
    return json.dumps(body, ensure_ascii=False, indent=1)


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _label(segment: dict[str, Any]) -> str:
    return f"[{segment['speaker']}] " if segment.get("speaker") else ""


def to_txt(data: dict[str, Any]) -> str:
    lines, last = [], None
    for seg in data["segments"]:
        speaker = seg.get("speaker")
        text = seg["text"].strip()
        if speaker and speaker != last:
            lines.append(f"{speaker}: {text}")
        else:
            lines.append(text)
        last = speaker
    return "\n".join(lines) + "\n"


def cue_text(text: str) -> str:
    """One line that cannot end a cue or start a timing line: a blank line ends an SRT/VTT
    cue, and a line holding "-->" reads as the next cue's times."""
    return " ".join(text.split()).replace("-->", "->")


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(data: dict[str, Any]) -> str:
    blocks = []
    for index, seg in enumerate(data["segments"], start=1):
        times = f"{_stamp(seg['start'], ',')} --> {_stamp(seg['end'], ',')}"
        blocks.append(f"{index}\n{times}\n{cue_text(_label(seg) + seg['text'])}\n")
    return "\n".join(blocks)


def to_vtt(data: dict[str, Any]) -> str:
    blocks = ["WEBVTT\n"]
    for seg in data["segments"]:
        times = f"{_stamp(seg['start'], '.')} --> {_stamp(seg['end'], '.')}"
        speaker = seg.get("speaker")
        text = _vtt_escape(cue_text(seg["text"]))
        cue = f"<v {_vtt_escape(cue_text(speaker))}>{text}" if speaker else text
        blocks.append(f"{times}\n{cue}\n")
    return "\n".join(blocks)


def to_tsv(data: dict[str, Any]) -> str:
    rows = ["start\tend\tspeaker\ttext"]
    for seg in data["segments"]:
        text = " ".join(seg["text"].split())
        rows.append(
            f"{round(seg['start'] * 1000)}\t{round(seg['end'] * 1000)}\t"
            f"{seg.get('speaker') or ''}\t{text}"
        )
    return "\n".join(rows) + "\n"


def to_rttm(turns: list[dict[str, Any]], uri: str) -> str:
    """NIST RTTM, one SPEAKER line per turn. Its fields are space-separated: spaces in the uri
    or a speaker's name become "_"."""
    name = "_".join(uri.split()) or "audio"
    return "".join(
        f"SPEAKER {name} 1 {t['start']:.3f} {t['end'] - t['start']:.3f} <NA> <NA> "
        f"{'_'.join(t['speaker'].split())} <NA> <NA>\n"
        for t in turns
    )
