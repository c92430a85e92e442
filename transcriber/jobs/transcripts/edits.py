"""Edits of a transcript, as plain functions of its data: speaker names, a segment's text or
speaker, and the word timings of an edited segment. Each raises BAD_REQUEST and changes nothing
when the edit is not valid; the caller saves the result as a new revision. An edit copies only
what it changes and shares the rest with the data it was given (neither is changed later): a
long transcript is not deep-copied for one segment, and the store finds the change by identity."""

from __future__ import annotations

import copy
import re
import unicodedata
from difflib import SequenceMatcher
from typing import Any

from transcriber.protocol.errors import ApiError

MAX_NAME = 100
MAX_TEXT = 10_000
_WORD = re.compile(r"[\W_]+")


def labels(data: dict[str, Any]) -> list[str]:
    """The speaker labels diarization gave (SPEAKER_00, ...): the keys of every rename."""
    found = {s["speaker"] for s in data["segments"] if s.get("speaker")}
    found |= {t["speaker"] for t in data.get("turns", ())}
    return sorted(found)


def rename(data: dict[str, Any], body: object) -> dict[str, Any]:
    """{"SPEAKER_01": "Dana"}: name labels; null gives a label back its own name."""
    if not isinstance(body, dict) or not body:
        raise ApiError("BAD_REQUEST", 'Send an object of names: {"SPEAKER_01": "Dana"}.')
    known = labels(data)
    names: dict[str, str] = dict(data.get("speaker_names") or {})
    for label, name in body.items():
        if label not in known:
            raise ApiError(
                "BAD_REQUEST", f"Unknown speaker label {label!r}.", f"labels: {', '.join(known)}"
            )
        if name is None:
            names.pop(label, None)
            continue
        names[label] = _name(name)
    result = {**data, "speaker_names": names}
    if data.get("speaker_profiles"):
        # A speaker named by hand is no longer shown as recognised (jobs/profiles).
        profiles = data["speaker_profiles"]
        result["speaker_profiles"] = {k: v for k, v in profiles.items() if k not in body}
    return result


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiError("BAD_REQUEST", "A speaker name must be non-empty text.")
    cleaned = " ".join(name.split())
    if len(cleaned) > MAX_NAME:
        raise ApiError("BAD_REQUEST", f"A speaker name may be at most {MAX_NAME} characters.")
    return printable(cleaned, "A speaker name")


def printable(text: str, what: str) -> str:
    """The text, refused (400) if a control character is left once whitespace is folded: it
    shows as nothing on the page and is invalid in a DOCX; a lone surrogate cannot be stored."""
    for position, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ApiError(
                "BAD_REQUEST",
                f"{what} may not contain control characters.",
                f"U+{ord(char):04X} at position {position}",
            )
    return text


def edit_segment(data: dict[str, Any], index: int, body: object) -> dict[str, Any]:
    """{"text": ...} and/or {"speaker": label or name}: one segment changed."""
    if not isinstance(body, dict) or not body or set(body) - {"text", "speaker"}:
        raise ApiError("BAD_REQUEST", 'Send {"text": ...} and/or {"speaker": ...}.')
    segments = data["segments"]
    if not 0 <= index < len(segments):
        raise ApiError(
            "BAD_REQUEST",
            f"There is no segment {index}.",
            f"segments: 0 to {len(segments) - 1}",
        )
    segment = copy.deepcopy(segments[index])
    if "speaker" in body:
        label = _label_for(data, body["speaker"])
        segment["speaker"] = label
        for word in segment.get("words", ()):
            word["speaker"] = label
    if "text" in body:
        text = body["text"]
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise ApiError("BAD_REQUEST", f"text must be non-empty, at most {MAX_TEXT} characters.")
        text = printable(" ".join(text.split()), "The text")
        if text != segment["text"]:
            words, timing = retime(segment.get("words", []), text, segment)
            segment.update(text=text, words=words, words_timing=timing, edited=True)
    return {**data, "segments": [*segments[:index], segment, *segments[index + 1 :]]}


def _label_for(data: dict[str, Any], speaker: object) -> str:
    """A label, or a name given to one: the first label (in order) that bears it."""
    known = labels(data)
    if isinstance(speaker, str) and speaker in known:
        return speaker
    names = data.get("speaker_names") or {}
    for label in known:
        if names.get(label) == speaker:
            return label
    raise ApiError(
        "BAD_REQUEST",
        f"Unknown speaker {speaker!r}: use a label or a name already given.",
        f"labels: {', '.join(known)}",
    )


def _norm(word: str) -> str:
    return _WORD.sub("", word.lower())


def retime(
    old: list[dict[str, Any]], text: str, segment: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """Words for new text: a word that still matches an old one keeps its timing; the others
    are spread evenly over the time between their kept neighbours (marked estimated).

    Returns the words and "kept" (all matched), "mixed" or "spread" (none matched).
    """
    tokens = text.split()
    matcher = SequenceMatcher(a=[_norm(w["word"]) for w in old], b=[_norm(t) for t in tokens])
    kept: dict[int, dict[str, Any]] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            kept[block.b + k] = old[block.a + k]
    words: list[dict[str, Any]] = [
        {**kept[j], "word": " " + token} if j in kept else {"word": " " + token}
        for j, token in enumerate(tokens)
    ]
    _spread(words, [j in kept for j in range(len(tokens))], segment)
    timing = "kept" if len(kept) == len(tokens) else "spread" if not kept else "mixed"
    return words, timing


def _spread(words: list[dict[str, Any]], timed: list[bool], segment: dict[str, Any]) -> None:
    j = 0
    while j < len(words):
        if timed[j]:
            j += 1
            continue
        run_end = j
        while run_end < len(words) and not timed[run_end]:
            run_end += 1
        low = words[j - 1]["end"] if j > 0 else segment["start"]
        high = words[run_end]["start"] if run_end < len(words) else segment["end"]
        high = max(high, low)
        step = (high - low) / (run_end - j)
        for k in range(j, run_end):
            offset = low + (k - j) * step
            words[k].update(
                start=round(offset, 3),
                end=round(offset + step, 3),
                probability=0.0,
                speaker=segment.get("speaker"),
                estimated=True,
            )
        j = run_end


def carry_text_edits(latest: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """A new diarization's output with the text edits of the latest revision carried over:
    edited segments keep their text and words and take the new speaker; names, moves and
    merges start again from the new labels."""
    result = copy.deepcopy(fresh)
    result["speaker_names"] = {}
    for index, old in enumerate(latest["segments"]):
        if not old.get("edited") or index >= len(result["segments"]):
            continue
        segment = result["segments"][index]
        words = copy.deepcopy(old.get("words", []))
        for word in words:
            word["speaker"] = segment.get("speaker")
        segment.update(
            text=old["text"], words=words, words_timing=old.get("words_timing"), edited=True
        )
    return result


def named(data: dict[str, Any]) -> dict[str, Any]:
    """The transcript as exports show it: each speaker by name, the label kept beside it in
    speaker_label; turns (for RTTM) by name too."""
    names = data.get("speaker_names") or {}
    result = copy.deepcopy(data)
    for segment in result["segments"]:
        _apply_names(segment, names)
    for turn in result.get("turns", ()):
        turn["speaker"] = names.get(turn["speaker"], turn["speaker"])
    return result


def named_segment(segment: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One segment as named() shows it, without copying the rest of the transcript."""
    result = copy.deepcopy(segment)
    _apply_names(result, names)
    return result


def _apply_names(segment: dict[str, Any], names: dict[str, str]) -> None:
    label = segment.get("speaker")
    if label:
        segment["speaker"] = names.get(label, label)
        segment["speaker_label"] = label
    for word in segment.get("words", ()):
        if word.get("speaker"):
            word["speaker"] = names.get(word["speaker"], word["speaker"])
