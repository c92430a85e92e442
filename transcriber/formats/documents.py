"""Transcripts for people, not programs: Markdown and DOCX, from a revision with names applied.

Both group consecutive segments of one speaker into a paragraph that starts with the speaker's
name in bold and the time it starts; a heading gives the file name, date and duration.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from docx import Document

from transcriber.store.task import Task

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
# What XML 1.0 cannot hold (C0 controls other than tab and line breaks, U+FFFE, U+FFFF): the
# edit refuses them, but a revision stored before it did, or a model's output, may have them.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clock(seconds: float) -> str:
    """0:04:10: hours always shown, so the stamps of one transcript line up."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def paragraphs(data: dict[str, Any]) -> Iterator[tuple[str | None, float, str]]:
    """(speaker, start, text) for each run of consecutive segments of one speaker."""
    speaker: str | None = None
    start = 0.0
    texts: list[str] = []
    for segment in data["segments"]:
        if texts and segment.get("speaker") != speaker:
            yield speaker, start, " ".join(texts)
            texts = []
        if not texts:
            speaker, start = segment.get("speaker"), segment["start"]
        texts.append(" ".join(segment["text"].split()))
    if texts:
        yield speaker, start, " ".join(texts)


def heading(task: Task, data: dict[str, Any]) -> str:
    date = task.created_at[:10]
    line = f"{date} · {clock(data['duration'])}"
    if data.get("language"):
        line += f" · {data['language']}"
    return line


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_md(task: Task, data: dict[str, Any]) -> str:
    lines = [f"# {_md(task.filename)}", "", heading(task, data), ""]
    for speaker, start, text in paragraphs(data):
        who = f"**{_md(speaker)}** " if speaker else ""
        lines += [f"{who}\\[{clock(start)}\\]", "", _md(text), ""]
    return "\n".join(lines)


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def to_docx(task: Task, data: dict[str, Any]) -> bytes:
    document = Document()
    title = _xml(task.filename)
    document.core_properties.title = title
    document.add_heading(title, level=1)
    document.add_paragraph(_xml(heading(task, data)))
    for speaker, start, text in paragraphs(data):
        paragraph = document.add_paragraph()
        if speaker:
            paragraph.add_run(_xml(" ".join(speaker.split()))).bold = True
            paragraph.add_run(" ")
        paragraph.add_run(f"[{clock(start)}]").italic = True
        paragraph.add_run("\n" + _xml(text))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
