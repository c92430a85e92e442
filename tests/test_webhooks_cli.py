"""Webhooks from the command line: `transcriber submit --callback URL` against the real server
process, and a bad --webhook-secret that stops `transcriber serve` at start."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from standardwebhooks import Webhook

from .conftest import tone_wav
from .serverproc import running_plumbing_server
from .test_webhooks import SECRET

CLIENT = (sys.executable, "-m", "transcriber")
SUBMIT = ("--follow", "--no-diarize", "--callback")
# "short" in base64 (padding left out): a 5-byte key
SHORT = "whsec_c2hvcnQ"


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/done"
    server.shutdown()
    server.server_close()


def test_submit_with_a_callback(receiver: str, tmp_path: Path) -> None:
    audio = tmp_path / "talk.wav"
    audio.write_bytes(tone_wav(seconds=2.0))
    flags = ("--webhook-hosts", "127.0.0.1", "--webhook-secret", SECRET)
    for server in running_plumbing_server(tmp_path, *flags, stage_seconds=0.2):
        done = subprocess.run(
            [
                *CLIENT,
                "submit",
                "--server",
                server.url,
                str(audio),
                "--callback",
                receiver,
                "--follow",
                "--no-diarize",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        task_id = done.stdout.split("\t")[0]
        deadline = time.monotonic() + 20
        while not Recorder.seen and time.monotonic() < deadline:
            time.sleep(0.1)
    headers, body = Recorder.seen[0]
    payload = Webhook(SECRET).verify(body, headers)
    assert (payload["id"], payload["stage"], payload["filename"]) == (
        task_id,
        "complete",
        "talk.wav",
    )
    assert payload["options"]["callback_url"] == receiver


def test_a_bad_webhook_secret_stops_the_start(tmp_path: Path) -> None:
    served = subprocess.run(
        [
            *CLIENT,
            "serve",
            "--data-dir",
            str(tmp_path),
            "--webhook-hosts",
            "hooks.lab",
            "--webhook-secret",
            "whsec_c2hvcnQ",
        ],  # "short": 5 bytes
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 1
    assert "webhook_secret" in served.stderr and "bytes" in served.stderr
    assert not (tmp_path / "transcriber.sqlite3").exists()
