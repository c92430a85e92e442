"""The client's progress display in a real pseudo-terminal of a fixed size, read back through a
terminal emulator (pyte): what a person in a 100-column tmux pane sees at the end.

The bug this pins: a failing file's long message wrapped onto a second terminal line, the redraw
moved the cursor up one line per file, and every redraw left a stale copy of the first file's bar
above the block, so the display scrolled instead of updating in place.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest

from .conftest import tone_wav
from .serverproc import ServerProcess, running_plumbing_server

COLUMNS, LINES = 100, 30
MESSAGE = "This file is not audio or video that the server can read. (UNSUPPORTED_MEDIA)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(tmp_path_factory.mktemp("tty"), stage_seconds=0.3)


def run_in_terminal(args: list[str], columns: int, lines: int) -> tuple[int, bytes]:
    """Run a command with stdin, stdout and stderr on a new pseudo-terminal of a fixed size;
    return its exit code and every byte it wrote to the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    try:
        proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        screen = "\n".join(screen_of(bytes(out), columns, lines))
        raise AssertionError(f"still running after 120 s; the screen:\n{screen}") from None
    finally:
        os.close(master)
    return code, bytes(out)


def screen_of(data: bytes, columns: int, lines: int) -> list[str]:
    """The final screen after a terminal of this size has shown `data`."""
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    stream.feed(data)
    return [line.rstrip() for line in screen.display]


def problems(data: bytes, names: list[str], columns: int, lines: int) -> list[str]:
    """What is wrong with a progress display that ended as `data` shows it."""
    found = []
    screen = screen_of(data, columns, lines)
    for name in names:
        rows = [line for line in screen if line.startswith(name)]
        if len(rows) != 1:
            found.append(f"{name} shows {len(rows)} times, not once")
    # Drawn on a terminal twice as wide, nothing wraps: each line is as long as it was written.
    wide = screen_of(data, 2 * columns, lines)
    found += [f"{len(line)} columns: {line!r}" for line in wide if len(line) > columns]
    return found


def test_three_files_one_failing_redraw_in_place(server: ServerProcess, tmp_path: Path) -> None:
    names = ["a.wav", "b.wav", "bad.wav"]
    (tmp_path / "a.wav").write_bytes(tone_wav(seconds=3.0))
    (tmp_path / "b.wav").write_bytes(tone_wav(seconds=3.0))
    (tmp_path / "bad.wav").write_text("not audio\n" * 20)
    command = [sys.executable, "-m", "transcriber", "submit", "--server", server.url]
    code, data = run_in_terminal(
        [*command, *(str(tmp_path / n) for n in names), "--follow"], COLUMNS, LINES
    )
    screen = screen_of(data, COLUMNS, LINES)
    shown = "\n".join(screen)
    assert code == 3, shown  # one file refused, the others followed to the end
    assert problems(data, names, COLUMNS, LINES) == [], shown
    rows = {name: next(line for line in screen if line.startswith(name)) for name in names}
    for name in ("a.wav", "b.wav"):
        assert re.search(r"\bComplete\b.*\b100%", rows[name]), shown
    assert re.search(r"\bFailed\b", rows["bad.wav"]), shown
    # The whole error, wrapped inside its row where it does not fit.
    assert MESSAGE in " ".join(shown.split()), shown
    # The task ids go to stdout, after the display, on the same terminal.
    ids = [line.split() for line in screen if re.match(r"[0-9a-f]{16}\s", line)]
    assert [row[1] for row in ids] == ["a.wav", "b.wav"], shown


def test_text_goes_above_the_bars_and_the_final_transcript_after(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(tone_wav(seconds=10.0))
    command = [sys.executable, "-m", "transcriber", "submit", "--server", server.url]
    code, data = run_in_terminal([*command, str(path), "--text"], COLUMNS, LINES)
    screen = [line for line in screen_of(data, COLUMNS, LINES) if line]
    shown = "\n".join(screen)
    assert code == 0, shown
    assert problems(data, ["talk.wav"], COLUMNS, LINES) == [], shown
    texts = [f"Plumbing segment {n}." for n in range(1, 6)]
    stamps = [f"[0:{s:02d}]" for s in range(0, 10, 2)]
    # The segments as they came, printed above the block of bars, which stayed in one place
    # at the bottom until the end; then the id and the final transcript with speakers.
    assert screen[:5] == [f"{s} {t}" for s, t in zip(stamps, texts, strict=True)], shown
    assert re.match(r"talk\.wav +Complete\b.*\b100%", screen[5]), shown
    assert re.match(r"[0-9a-f]{16}\s+talk\.wav$", screen[6]), shown
    assert screen[7:] == [f"{s} SPEAKER_00: {t}" for s, t in zip(stamps, texts, strict=True)]


def old_redraw(rows: list[list[str]]) -> bytes:
    """The display this test was written against: each redraw moved the cursor up one line
    per file, whatever the terminal had wrapped. ("\r\n": the terminal's own newline.)"""
    out = []
    for i, lines in enumerate(rows):
        if i:
            out.append(f"\x1b[{len(lines)}F")
        out += ["\x1b[2K" + line + "\r\n" for line in lines]
    return "".join(out).encode()


def test_the_check_catches_a_redraw_that_scrolls() -> None:
    bar = "[" + "#" * 24 + "] 100%"
    failed = f"bad.wav: [{'-' * 24}]   0% Failed       {MESSAGE}"
    frames = [
        [f"a.wav: {bar} Complete", f"b.wav: [{'-' * 24}]  {p:2d}% Transcribing", failed]
        for p in range(0, 100, 10)
    ]
    found = problems(old_redraw(frames), ["a.wav", "b.wav", "bad.wav"], COLUMNS, LINES)
    assert "a.wav shows 10 times, not once" in found, found
    assert any(p.startswith(f"{len(failed)} columns") for p in found), found
