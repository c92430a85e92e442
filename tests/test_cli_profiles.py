"""`transcriber profiles` against the real server process (plumbing pipeline: every task's
SPEAKER_00 has the same made-up voice)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import tone_wav
from .serverproc import ServerProcess, running_plumbing_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_plumbing_server(tmp_path_factory.mktemp("cli-profiles"))


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "transcriber", *args[:1]]
    if args[0] == "profiles":
        command += [args[1], "--server", url, *args[2:]]
    else:
        command += ["--server", url, *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_add_list_rename_export_delete_import(server: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(tone_wav(seconds=10.0))
    done = run(server.url, "submit", str(path), "--follow")
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.split("\t")[0]
    added = run(server.url, "profiles", "add", task_id, "SPEAKER_00", "--name", "Anna")
    assert added.returncode == 0, added.stderr
    profile_id = added.stdout.split()[0]
    assert added.stdout.strip() == f"{profile_id}  Anna  10 s of speech in 1 sample"
    again = run(server.url, "profiles", "add", task_id, "SPEAKER_00", "--name", "Anna")
    assert again.returncode == 3 and "(NAME_TAKEN)" in again.stderr
    renamed = run(server.url, "profiles", "rename", profile_id, "Anna Berg")
    assert renamed.returncode == 0 and "Anna Berg" in renamed.stdout
    listed = run(server.url, "profiles", "list")
    assert listed.stdout.splitlines() == [f"{profile_id}  Anna Berg  10 s of speech in 1 sample"]
    exported = tmp_path / "voices.json"
    out = run(server.url, "profiles", "export", "-o", str(exported))
    assert out.returncode == 0, out.stderr
    document = json.loads(exported.read_text())
    assert [p["name"] for p in document["profiles"]] == ["Anna Berg"]
    assert len(document["profiles"][0]["samples"][0]["embedding"]) == 192
    gone = run(server.url, "profiles", "delete", profile_id)
    assert gone.returncode == 0 and run(server.url, "profiles", "list").stdout == ""
    assert run(server.url, "profiles", "delete", profile_id).returncode == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"profiles": [{"name": "X", "samples": [{"embedding": [1], "seconds": 3}]}]}')
    refused = run(server.url, "profiles", "import", str(bad))
    assert refused.returncode == 3 and "(BAD_REQUEST)" in refused.stderr
    back = run(server.url, "profiles", "import", str(exported))
    assert back.returncode == 0, back.stderr
    assert back.stdout.split("  ")[1] == "Anna Berg"
    second = run(server.url, "submit", str(path), "--follow")
    got = run(server.url, "get", second.stdout.split("\t")[0], "--format", "txt")
    assert got.stdout.splitlines()[0] == "Anna Berg: Plumbing segment 1."
