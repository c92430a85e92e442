"""The command-line client against the real server process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import srt

from .conftest import tone_wav
from .serverproc import ServerProcess, free_port, running_plumbing_server, running_proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(tmp_path_factory.mktemp("cli"))


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transcriber", args[0], "--server", url, *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_submit_follow_status_get_list(server: ServerProcess, tmp_path: Path) -> None:
    files = []
    for name in ("one.wav", "two.wav"):
        path = tmp_path / name
        path.write_bytes(tone_wav(seconds=4.0))
        files.append(str(path))
    done = cli(server.url, "submit", *files, "--follow", "--language", "en")
    assert done.returncode == 0, done.stderr
    ids = [line.split("\t") for line in done.stdout.splitlines()]
    assert [name for _, name in ids] == ["one.wav", "two.wav"]
    for stage in ("Uploading", "Transcribing", "Aligning", "Diarizing", "Complete"):
        assert stage in done.stderr
    assert "one.wav: [########################] 100% Complete" in done.stderr
    task_id = ids[0][0]
    status = cli(server.url, "status", task_id)
    assert status.returncode == 0
    assert status.stdout.startswith(f"{task_id}  one.wav  Complete 100%  Done")
    out = tmp_path / "out.srt"
    got = cli(server.url, "get", task_id, "--format", "srt", "-o", str(out))
    assert got.returncode == 0, got.stderr
    subs = list(srt.parse(out.read_text()))
    assert subs[0].content == "[SPEAKER_00] Plumbing segment 1."
    listed = cli(server.url, "list")
    assert task_id in listed.stdout and ids[1][0] in listed.stdout


PROVISIONAL = [f"[0:{2 * n:02d}] Plumbing segment {n + 1}." for n in range(5)]
FINAL = [f"[0:{2 * n:02d}] SPEAKER_00: Plumbing segment {n + 1}." for n in range(5)]


def test_text_shows_each_segment_as_it_comes_then_the_final_transcript(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(tone_wav(seconds=10.0))
    done = cli(server.url, "submit", str(path), "--follow", "--text")
    assert done.returncode == 0, done.stderr
    shown = done.stderr.splitlines()
    # Each segment as the worker decoded it: between the stage lines of transcribing and
    # aligning, below the one and above the other.
    transcribing = next(i for i, line in enumerate(shown) if "Transcribing" in line)
    aligning = next(i for i, line in enumerate(shown) if "Aligning" in line)
    assert shown[transcribing + 1 : aligning] == PROVISIONAL, done.stderr
    assert "talk.wav: [########################] 100% Complete" in done.stderr
    # On stdout, after the task's id, the final transcript with its speakers.
    task_id, *text = done.stdout.splitlines()
    assert task_id.endswith("\ttalk.wav")
    assert text == FINAL
    # Two files: each line names its file.
    other = tmp_path / "other.wav"
    other.write_bytes(tone_wav(seconds=4.0, freq=500.0))
    both = cli(server.url, "submit", str(path), str(other), "--text")  # --text follows
    assert both.returncode == 0, both.stderr
    assert "[other.wav 0:02] Plumbing segment 2." in both.stderr.splitlines()
    assert both.stdout.splitlines()[2:] == [
        *(line.replace("[", "[talk.wav ", 1) for line in FINAL),
        *(line.replace("[", "[other.wav ", 1) for line in FINAL[:2]),
    ]


def test_clear_errors_and_exit_codes(server: ServerProcess, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 20)
    refused = cli(server.url, "submit", str(bad))
    assert refused.returncode == 3
    assert "This file is not audio or video that the server can read. (UNSUPPORTED_MEDIA)" in (
        refused.stderr
    )
    unknown = cli(server.url, "status", "0123456789abcdef")
    assert unknown.returncode == 3
    assert unknown.stderr == "transcriber: There is no task with this id. (UNKNOWN_TASK)\n"
    missing = cli(server.url, "submit", str(tmp_path / "nope.wav"))
    assert (missing.returncode, missing.stderr) == (
        3,
        f"transcriber: no such file: {tmp_path / 'nope.wav'}\n",
    )
    down = cli(f"http://127.0.0.1:{free_port()}", "list")
    assert down.returncode == 4 and "cannot reach" in down.stderr


def test_cancel_and_not_ready(server: ServerProcess, tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"f{i}.wav")
        paths[-1].write_bytes(tone_wav(seconds=2.0))
    submitted = cli(server.url, "submit", *map(str, paths))
    # The last of four waits in the queue for seconds: time enough to cancel it.
    task_id = submitted.stdout.splitlines()[-1].split("\t")[0]
    early = cli(server.url, "get", task_id)
    assert early.returncode == 3 and "(NOT_READY)" in early.stderr
    cancelled = cli(server.url, "cancel", task_id)
    assert cancelled.stdout == f"{task_id}  cancelled\n"
    status = cli(server.url, "status", task_id)
    assert status.returncode == 1
    assert "error CANCELLED: The task was cancelled." in status.stdout


def test_token_goes_in_the_header_websocket_included(tmp_path: Path) -> None:
    """With a token, --follow stays on the WebSocket (a 401 there would mean polling)."""
    path = tmp_path / "secret.wav"
    path.write_bytes(tone_wav(seconds=2.0))
    for server in running_plumbing_server(tmp_path / "token", "--token", "cli-token"):
        refused = cli(server.url, "submit", str(path))
        assert refused.returncode == 3 and "(UNAUTHORIZED)" in refused.stderr
        done = cli(server.url, "submit", str(path), "--follow", "--token", "cli-token")
        assert done.returncode == 0, done.stderr
        assert "WebSocket unavailable" not in done.stderr
        assert "secret.wav: [########################] 100% Complete" in done.stderr


def test_follow_falls_back_to_polling(server: ServerProcess, tmp_path: Path) -> None:
    """Behind a proxy that refuses WebSocket upgrades, --follow still sees the task end."""
    with contextmanager(running_proxy)(server.url, tmp_path / "proxy.log") as (url, switch):
        switch("403")
        path = tmp_path / "polled.wav"
        path.write_bytes(tone_wav(seconds=2.0))
        done = cli(url, "submit", str(path), "--follow")
        assert done.returncode == 0, done.stderr
        assert "WebSocket unavailable, polling" in done.stderr
        assert "polled.wav: [########################] 100% Complete" in done.stderr
        # Polling, the text still comes as it is decoded (the snapshot counts the segments
        # stored), each segment once, and the final transcript after it.
        longer = tmp_path / "polled_text.wav"
        longer.write_bytes(tone_wav(seconds=6.0))
        text = cli(url, "submit", str(longer), "--text")
        assert text.returncode == 0, text.stderr
        assert "WebSocket unavailable, polling" in text.stderr
        lines = [line for line in text.stderr.splitlines() if line.startswith("[")]
        assert lines == PROVISIONAL[:3], text.stderr
        assert text.stdout.splitlines()[1:] == FINAL[:3]
