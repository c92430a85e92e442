"""Keys per person: `transcriber keys` against a real SQLite file, a running server that sees a
new or revoked key within seconds, keys as bearer tokens and as the page's session cookie."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from transcriber.cli import parse
from transcriber.jobs.access import KEYS_TTL
from transcriber.store.task import WATCH_OWNER
from transcriber.web.keys import TASKS

from .conftest import ClientFactory, assert_error, tone_wav, upload
from .serverproc import ROOT


def run_keys(data_dir: Path, *argv: str) -> tuple[int, str, str]:
    """`transcriber keys ...` in this process: its exit code, stdout and stderr. In a thread of
    its own, as the command runs its own event loop (a browser test's thread has one)."""

    def command() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            args = parse(["keys", *argv[:1], "--data-dir", str(data_dir), *argv[1:]])
            code = args.func(args)
        return code, out.getvalue(), err.getvalue()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(command).result()


def add_key(data_dir: Path, name: str, *flags: str) -> str:
    code, out, err = run_keys(data_dir, "add", name, *flags)
    assert code == 0, err
    return out.strip()


def key_rows(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "transcriber.sqlite3") as db:
        return db.execute(
            "SELECT name, digest, session_digest, admin, last_used FROM api_keys ORDER BY name"
        ).fetchall()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def eventually(check: Any, seconds: float = KEYS_TTL + 3) -> None:
    """Wait until `check()` (a coroutine) is true: a server rereads its keys every KEYS_TTL."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "the server never saw the change"
        await asyncio.sleep(0.2)


def test_a_key_is_printed_once_and_only_its_digests_are_stored(tmp_path: Path) -> None:
    key = add_key(tmp_path, "alice")
    admin_key = add_key(tmp_path, "Carol.B-2", "--admin")
    assert key.startswith("tk_") and len(key) == 3 + 43 and key != admin_key
    rows = key_rows(tmp_path)
    assert [(r[0], r[3], r[4]) for r in rows] == [("alice", 0, None), ("Carol.B-2", 1, None)]
    assert rows[0][1] == hashlib.sha256(key.encode()).hexdigest()
    assert rows[0][2] not in (rows[0][1], key)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("transcriber.sqlite3*"))
    assert key.encode() not in raw and admin_key.encode() not in raw
    code, out, _ = run_keys(tmp_path, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["name", "admin", "created", "last", "used"]
    assert [line.split()[:2] + line.split()[3:] for line in lines[1:]] == [
        ["alice", "no", "never"],
        ["Carol.B-2", "yes", "never"],
    ]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "1 to 32 letters"),
        ("a b", "1 to 32 letters"),
        ("x" * 33, "1 to 32 letters"),
        ("_under", "1 to 32 letters"),
        ("ünï", "1 to 32 letters"),
        ("../etc", "1 to 32 letters"),
        ("admin", "reserved"),
        ("Watch", "reserved"),
        ("me", "reserved"),
    ],
)
def test_a_bad_name_is_refused_in_words(tmp_path: Path, name: str, words: str) -> None:
    code, out, err = run_keys(tmp_path, "add", name)
    assert code == 2 and out == "" and words in err and err.startswith("transcriber: ")
    assert not (tmp_path / "transcriber.sqlite3").exists() or key_rows(tmp_path) == []


def test_a_duplicate_name_and_an_unknown_revoke_are_refused(tmp_path: Path) -> None:
    first = add_key(tmp_path, "alice")
    code, out, err = run_keys(tmp_path, "add", "ALICE")  # names compare without case
    assert (code, out) == (2, "")
    assert "a key named 'ALICE' exists; revoke it first" in err
    assert [r[1] for r in key_rows(tmp_path)] == [hashlib.sha256(first.encode()).hexdigest()]
    code, _, err = run_keys(tmp_path, "revoke", "bob")
    assert code == 2 and "no key named 'bob'" in err
    assert run_keys(tmp_path, "revoke", "alice")[0] == 0
    assert key_rows(tmp_path) == []


def test_the_command_finds_the_database_as_serve_does(tmp_path: Path) -> None:
    """A real `transcriber keys` process: TRANSCRIBER_DATA_DIR, and exit 2 for a bad name."""
    env = {"TRANSCRIBER_DATA_DIR": str(tmp_path / "lab"), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "transcriber", "keys"]
    done = subprocess.run(
        [*command, "add", "dora"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tk_") and "shown only this once" in done.stderr
    assert [r[0] for r in key_rows(tmp_path / "lab")] == ["dora"]
    bad = subprocess.run(
        [*command, "add", "no way"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "1 to 32 letters" in bad.stderr and bad.stdout == ""


async def test_keys_switch_authentication_on_and_a_key_acts_as_its_holder(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    client = await make_client()
    assert (await client.get("/api/tasks")).status == 200  # no token, no keys: open
    key = await asyncio.to_thread(add_key, data, "alice")

    async def locked() -> bool:
        return (await client.get("/api/tasks")).status == 401

    await eventually(locked)
    await assert_error(await client.get("/api/tasks"), 401, "UNAUTHORIZED")
    wrong = await client.get("/api/tasks", headers=bearer("tk_" + "x" * 43))
    error = await assert_error(wrong, 401, "UNAUTHORIZED")
    assert error["detail"] == "the bearer token is not the server's nor a key"
    snap = await (
        await client.post("/api/tasks", json={"filename": "a.wav"}, headers=bearer(key))
    ).json()
    assert snap["owner"] == "alice"
    listed = await (await client.get("/api/tasks", headers=bearer(key))).json()
    assert [(t["id"], t["owner"]) for t in listed["tasks"]] == [(snap["id"], "alice")]
    assert key_rows(data)[0][4] is not None  # last used, written by the server
    # The Host check is for servers without credentials: keys lift it, as a token does.
    other_host = {**bearer(key), "Host": "lab.example"}
    assert (await client.get("/api/tasks", headers=other_host)).status == 200


async def test_a_revoked_key_is_refused_and_signs_its_browsers_out(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    key = await asyncio.to_thread(add_key, data, "alice")
    bob = await asyncio.to_thread(add_key, data, "bob")
    client = await make_client(token="the-admin-token")
    own = {"Sec-Fetch-Site": "same-origin"}
    signed = await client.post("/api/session", json={"token": key}, headers=own)
    assert await signed.json() == {
        "token_required": True,
        "signed_in": True,
        "name": "alice",
        "admin": False,
    }
    cookie = signed.cookies["transcriber_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and key not in cookie.value
    state = await (await client.get("/api/session")).json()
    assert (state["signed_in"], state["name"]) == (True, "alice")
    made = await client.post("/api/tasks", json={"filename": "page.wav"}, headers=own)
    assert (await made.json())["owner"] == "alice"
    assert (await client.get("/api/tasks", headers=bearer(key))).status == 200
    # The token keeps working beside the keys, as the admin.
    token = bearer("the-admin-token")
    mine = await client.post("/api/tasks", json={"filename": "t.wav"}, headers=token)
    assert (await mine.json())["owner"] == "admin"

    await asyncio.to_thread(run_keys, data, "revoke", "alice")

    async def refused() -> bool:
        return (await client.get("/api/tasks", headers=bearer(key))).status == 401

    await eventually(refused)
    await assert_error(await client.get("/api/tasks"), 401, "UNAUTHORIZED")  # the cookie
    state = await (await client.get("/api/session")).json()
    assert state == {"token_required": True, "signed_in": False, "name": None, "admin": False}
    again = await client.post("/api/session", json={"token": key}, headers=own)
    await assert_error(again, 401, "UNAUTHORIZED")
    # Other holders are not affected.
    assert (await client.get("/api/tasks", headers=bearer(bob))).status == 200
    assert (await client.get("/api/tasks", headers=token)).status == 200


async def test_a_watched_folder_can_give_its_tasks_their_own_owner(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    tasks = client.server.app[TASKS]
    task = await tasks.create("dropped.wav", {}, ".wav", owner=WATCH_OWNER)
    snap = await (await client.get(f"/api/tasks/{task.id}")).json()
    stored = await tasks.store.get(task.id)
    assert snap["owner"] == "watch" and stored is not None and stored.owner == "watch"
    plain = await (await upload(client, tone_wav(1.0))).json()
    assert plain["owner"] == "admin"  # no credentials: everyone is the admin


async def test_the_client_commands_take_a_key(make_client: ClientFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = await asyncio.to_thread(add_key, data, "alice")
    client = await make_client()
    await client.post("/api/tasks", json={"filename": "listed.wav"}, headers=bearer(key))
    url = str(client.make_url("/")).rstrip("/")
    done = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transcriber",
        "list",
        "--server",
        url,
        cwd=ROOT,
        env={"TRANSCRIBER_TOKEN": key, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await done.communicate()
    assert done.returncode == 0, err
    fields = out.decode().split()
    assert fields[-2:] == ["alice", "listed.wav"] and len(out.decode().splitlines()) == 1
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{url}/api/tasks", headers=bearer(key + "x"))
        await assert_error(resp, 401, "UNAUTHORIZED")
