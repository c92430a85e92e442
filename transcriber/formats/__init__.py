"""Every format a transcript is served in, in one table: its name, media type, the name the
page shows, and its renderer. The download route, the OpenAPI document and the page
(static/formats.js, generated from this table; a test keeps it in step) all read it:
    python -m transcriber.formats --js > static/formats.js

text.py renders the formats for programs (json, txt, srt, vtt, tsv, and RTTM, which is served
at its own route), documents.py those for people (md, docx). Both render a revision's data with
the speakers' names applied; neither imports anything of the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transcriber.formats import documents, text
from transcriber.store.task import Task

Render = Callable[[Task, dict[str, Any]], str | bytes]


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    label: str
    render: Render
    binary: bool = False


def _text(render: Callable[[dict[str, Any]], str]) -> Render:
    return lambda task, data: render(data)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("json", "application/json", "JSON", lambda t, d: text.to_json(d, t.timings)),
        Format("txt", "text/plain", "TXT", _text(text.to_txt)),
        Format("srt", "application/x-subrip", "SRT", _text(text.to_srt)),
        Format("vtt", "text/vtt", "VTT", _text(text.to_vtt)),
        Format("tsv", "text/tab-separated-values", "TSV", _text(text.to_tsv)),
        Format("md", "text/markdown", "Markdown", documents.to_md),
        Format(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "DOCX",
            documents.to_docx,
            binary=True,
        ),
    )
}


def render(fmt: str, task: Task, data: dict[str, Any]) -> bytes:
    """The file's bytes: text formats in UTF-8."""
    body = FORMATS[fmt].render(task, data)
    return body if isinstance(body, bytes) else body.encode()


def javascript() -> str:
    """static/formats.js: the table's names and labels, in order, for the page's downloads."""
    rows = ",\n".join(f'  ["{f.name}", "{f.label}"]' for f in FORMATS.values())
    return (
        "// Generated from transcriber/formats/__init__.py; do not edit. Regenerate with\n"
        "//   python -m transcriber.formats --js > static/formats.js\n\n"
        "// [format name, the name the page shows], in the order the page lists them.\n"
        f"export const FORMATS = Object.freeze([\n{rows},\n]);\n"
    )
