"""The files written for a watched file: `talk.wav` -> `talk.srt`, `talk.txt`, ... beside it
or in --watch-out, and `talk.error.txt` when its task fails. Each is written to a hidden
temporary file in the same folder and renamed over the old one, so a reader never sees half a
file, and the watch ignores what it writes (formats' suffixes and hidden names)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from transcriber.formats import FORMATS

ERROR_SUFFIX = "error.txt"
# Never sources: what this module writes, and the formats it may write.
OUTPUT_SUFFIXES = frozenset({f".{name}" for name in FORMATS})


def output_path(source: Path, out_dir: Path | None, suffix: str) -> Path:
    return (out_dir or source.parent) / f"{source.stem}.{suffix}"


def never_source(path: Path) -> bool:
    """Hidden files (temporary ones among them) and files with a format's suffix."""
    return path.name.startswith(".") or path.suffix.lower() in OUTPUT_SUFFIXES


def write_atomic(path: Path, body: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_bytes(body)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def outputs_present(source: Path, out_dir: Path | None, formats: tuple[str, ...]) -> bool:
    """Every output is there and no older than the file: it was done before."""
    made = source.stat().st_mtime_ns
    for fmt in formats:
        path = output_path(source, out_dir, fmt)
        if not path.is_file() or path.stat().st_mtime_ns < made:
            return False
    return True


def error_text(error: dict[str, Any] | None) -> bytes:
    error = error or {"code": "INTERNAL", "message": "The task ended without its transcript."}
    lines = [f"{error['code']}: {error['message']}"]
    if error.get("detail"):
        lines.append(str(error["detail"]))
    return ("\n".join(lines) + "\n").encode()
