"""Webhooks: a real receiver on 127.0.0.1 (listed in --webhook-hosts), verified with the
standardwebhooks package; retries, timeouts, redirects, restarts and refused callbacks."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from transcriber.config import Config
from transcriber.protocol.snapshot import Snapshot

from .conftest import ClientFactory, assert_error, upload, wait_for_stage

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
FAST = {
    "webhook_hosts": ("127.0.0.1",),
    "webhook_secret": SECRET,
    "webhook_backoff": (0.2, 0.2, 0.2),
    "webhook_timeout": 1.0,
}


class Receiver:
    """An aiohttp server that records each POST and answers as `answer` says."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[Callable[[], Awaitable[web.StreamResponse]]] = []
        self.other_hits = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/other", self.other)
        app.router.add_get("/other", self.other)
        return app

    async def hook(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), await request.read()))
        if self.answers:
            return await self.answers.pop(0)()
        return web.Response(status=204)

    async def other(self, request: web.Request) -> web.Response:
        self.other_hits += 1
        return web.Response(status=200)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(aiohttp_server: Any, receiver: Receiver, port: int | None = None) -> str:
    server = await aiohttp_server(receiver.app(), port=port or free_port())
    return f"http://127.0.0.1:{server.port}/hook"


async def wait_webhook(
    client: Any, task_id: str, states: set[str], attempts: int = 0, timeout: float = 20.0
) -> dict[str, Any]:
    """Long-poll until the task's webhook is in one of `states` after at least `attempts`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    since = 0
    while loop.time() < deadline:
        snap: dict[str, Any] = await (
            await client.get(f"/api/tasks/{task_id}", params={"wait": 2, "since": since})
        ).json()
        hook = snap["webhook"]
        if hook is not None and hook["state"] in states and hook["attempts"] >= attempts:
            return snap
        since = snap["seq"]
    raise AssertionError(f"task {task_id}: webhook never reached {states}")


def verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(SECRET).verify(body, headers)
    return payload


def pending_rows(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "transcriber.sqlite3") as db:
        return list(db.execute("SELECT id, task_id FROM webhook_deliveries"))


async def none_pending(data_dir: Path) -> None:
    """The row goes right after the delivered state is published: wait for it a moment."""
    for _ in range(50):
        if not pending_rows(data_dir):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(pending_rows(data_dir))


async def submit(client: Any, wav: bytes, url: str) -> str:
    resp = await upload(client, wav, callback_url=url, diarize="false")
    assert resp.status == 201, await resp.text()
    snap = await resp.json()
    assert snap["options"]["callback_url"] == url
    assert snap["webhook"] is None
    return str(snap["id"])


async def test_final_snapshot_is_posted_signed_and_verifiable(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes, tmp_path: Path
) -> None:
    receiver = Receiver()
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST)
    task_id = await submit(client, wav_bytes, url)
    done = await wait_webhook(client, task_id, {"delivered"})
    hook = done["webhook"]
    assert (hook["attempts"], hook["last_status"], hook["last_error"]) == (1, 204, None)
    assert hook["next_try"] is None and hook["last_try"] is not None
    assert len(receiver.seen) == 1
    headers, body = receiver.seen[0]
    payload = verified(headers, body)
    assert payload["id"] == task_id and payload["stage"] == "complete"
    assert payload["progress"] == 100 and payload["error"] is None
    assert headers["webhook-id"] == hook["id"] and hook["id"].startswith("msg_")
    assert headers["Content-Type"] == "application/json"
    # A signature made with another key does not pass.
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(body, headers)
    await none_pending(tmp_path / "data")
    Snapshot.model_validate(done)  # the snapshot's documented shape, webhook included
    Snapshot.model_validate(payload)


async def test_failed_and_cancelled_tasks_are_posted_too(
    make_client: ClientFactory, aiohttp_server: Any, tmp_path: Path
) -> None:
    receiver = Receiver()
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST)
    bad = await upload(client, b"not audio at all" * 100, "x.wav", callback_url=url)
    assert bad.status == 415
    failed_id = (await bad.json())["error"]["task_id"]
    await wait_webhook(client, failed_id, {"delivered"})
    resp = await client.post(
        "/api/tasks", json={"filename": "a.wav", "options": {"callback_url": url}}
    )
    task_id = (await resp.json())["id"]
    await client.post(f"/api/tasks/{task_id}/cancel")
    await wait_webhook(client, task_id, {"delivered"})
    stages = {verified(h, b)["id"]: verified(h, b)["stage"] for h, b in receiver.seen}
    assert stages == {failed_id: "failed", task_id: "cancelled"}
    errors = [verified(h, b)["error"]["code"] for h, b in receiver.seen]
    assert sorted(errors) == ["CANCELLED", "UNSUPPORTED_MEDIA"]


async def test_a_500_is_retried_with_the_same_webhook_id(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes
) -> None:
    receiver = Receiver()

    async def broken() -> web.Response:
        return web.Response(status=500, text="oops")

    receiver.answers = [broken, broken]
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST)
    task_id = await submit(client, wav_bytes, url)
    done = await wait_webhook(client, task_id, {"delivered", "failed"})
    assert done["webhook"]["state"] == "delivered"
    assert (done["webhook"]["attempts"], done["webhook"]["last_status"]) == (3, 204)
    ids = {h["webhook-id"] for h, _ in receiver.seen}
    assert ids == {done["webhook"]["id"]} and len(receiver.seen) == 3
    bodies = {b for _, b in receiver.seen}
    assert len(bodies) == 1  # the same message each time, freshly signed
    for headers, body in receiver.seen:
        assert verified(headers, body)["stage"] == "complete"


async def test_a_receiver_down_for_a_while_gets_it_once_up(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    client = await make_client(**FAST | {"webhook_backoff": (0.3,) * 20})
    task_id = await submit(client, wav_bytes, url)
    await wait_for_stage(client, task_id, {"complete"})
    down = await wait_webhook(client, task_id, {"pending"}, attempts=2)
    assert down["webhook"]["last_status"] is None
    assert "cannot connect" in down["webhook"]["last_error"]
    assert down["webhook"]["next_try"] is not None
    receiver = Receiver()
    await start(aiohttp_server, receiver, port)
    done = await wait_webhook(client, task_id, {"delivered"})
    assert done["webhook"]["attempts"] > down["webhook"]["attempts"]
    assert [h["webhook-id"] for h, _ in receiver.seen] == [down["webhook"]["id"]]
    assert verified(*receiver.seen[0])["id"] == task_id


async def test_a_slow_receiver_times_out_and_is_tried_again(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes
) -> None:
    receiver = Receiver()

    async def slow() -> web.Response:
        await asyncio.sleep(3)
        return web.Response(status=200)

    receiver.answers = [slow]
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST | {"webhook_timeout": 0.5})
    task_id = await submit(client, wav_bytes, url)
    first = await wait_webhook(client, task_id, {"pending", "delivered"}, attempts=1)
    assert first["webhook"]["state"] == "pending"
    assert first["webhook"]["last_error"] == "no answer within 0.5 s"
    done = await wait_webhook(client, task_id, {"delivered"})
    assert done["webhook"]["attempts"] == 2
    assert len({h["webhook-id"] for h, _ in receiver.seen}) == 1


async def test_redirects_are_not_followed(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes
) -> None:
    receiver = Receiver()

    async def moved() -> web.Response:
        return web.Response(status=307, headers={"Location": "/other"})

    receiver.answers = [moved, moved]
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST | {"webhook_backoff": (0.1,)})
    task_id = await submit(client, wav_bytes, url)
    done = await wait_webhook(client, task_id, {"failed", "delivered"})
    hook = done["webhook"]
    assert (hook["state"], hook["attempts"], hook["last_status"]) == ("failed", 2, 307)
    assert hook["last_error"] == "answered HTTP 307" and hook["next_try"] is None
    assert receiver.other_hits == 0 and len(receiver.seen) == 2


async def test_a_pending_delivery_survives_a_restart(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    first = await make_client(**FAST | {"webhook_backoff": (0.5,) * 20})
    task_id = await submit(first, wav_bytes, url)
    await wait_for_stage(first, task_id, {"complete"})
    down = await wait_webhook(first, task_id, {"pending"}, attempts=1)
    await first.close()
    message_id = down["webhook"]["id"]
    assert pending_rows(tmp_path / "data") == [(message_id, task_id)]
    receiver = Receiver()
    await start(aiohttp_server, receiver, port)
    second = await make_client(**FAST)
    done = await wait_webhook(second, task_id, {"delivered"})
    assert done["webhook"]["id"] == message_id
    assert done["webhook"]["attempts"] >= down["webhook"]["attempts"] + 1
    assert [h["webhook-id"] for h, _ in receiver.seen] == [message_id]
    assert verified(*receiver.seen[0])["stage"] == "complete"
    await none_pending(tmp_path / "data")


async def test_a_delivery_whose_message_was_not_written_is_made_at_start(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes, tmp_path: Path
) -> None:
    """The end of the task and its owed delivery are one write; the message is a second one.
    A stop between the two leaves the task pending without a row: the start writes it."""
    first = await make_client(**FAST | {"webhook_backoff": (60.0,)})
    task_id = await submit(first, wav_bytes, f"http://127.0.0.1:{free_port()}/hook")
    pending = await wait_webhook(first, task_id, {"pending"}, attempts=1)
    await first.close()
    with sqlite3.connect(tmp_path / "data" / "transcriber.sqlite3") as db:
        db.execute("DELETE FROM webhook_deliveries")
    receiver = Receiver()
    url = await start(aiohttp_server, receiver)
    with sqlite3.connect(tmp_path / "data" / "transcriber.sqlite3") as db:
        db.execute(
            "UPDATE tasks SET options = json_set(options, '$.callback_url', ?),"
            " webhook = json_set(webhook, '$.next_try', '2000-01-01T00:00:00.000Z')",
            (url,),
        )
    second = await make_client(**FAST)
    done = await wait_webhook(second, task_id, {"delivered"})
    assert receiver.seen[0][0]["webhook-id"] == pending["webhook"]["id"] == done["webhook"]["id"]
    assert verified(*receiver.seen[0])["id"] == task_id


async def test_a_retried_task_sends_a_new_delivery_and_a_deleted_one_none(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes, tmp_path: Path
) -> None:
    receiver = Receiver()
    url = await start(aiohttp_server, receiver)
    client = await make_client(**FAST | {"plumbing_stage_seconds": 1.0})
    task_id = await submit(client, wav_bytes, url)
    await wait_for_stage(client, task_id, {"transcribing"})
    await client.post(f"/api/tasks/{task_id}/cancel")
    cancelled = await wait_webhook(client, task_id, {"delivered"})
    assert (await client.post(f"/api/tasks/{task_id}/retry")).status == 200
    await wait_for_stage(client, task_id, {"complete"})
    done = await wait_webhook(client, task_id, {"delivered"})
    assert done["webhook"]["id"] != cancelled["webhook"]["id"]
    sent = [(h["webhook-id"], verified(h, b)["stage"]) for h, b in receiver.seen]
    assert sent == [(cancelled["webhook"]["id"], "cancelled"), (done["webhook"]["id"], "complete")]
    # A task deleted while its delivery is pending takes the delivery with it.
    down = f"http://127.0.0.1:{free_port()}/hook"
    other = await submit(client, wav_bytes, down)
    await wait_webhook(client, other, {"pending"}, attempts=1)
    assert [t for _, t in pending_rows(tmp_path / "data")] == [other]
    assert (await client.delete(f"/api/tasks/{other}")).status == 204
    await none_pending(tmp_path / "data")


async def test_https_certificates_are_verified(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes, tmp_path: Path
) -> None:
    """A receiver whose certificate no trusted authority signed gets no request."""
    from transcriber.node.tls import write_certs

    write_certs(tmp_path / "certs")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "certs" / "node.pem", tmp_path / "certs" / "node.key")
    receiver = Receiver()
    server = await aiohttp_server(receiver.app(), port=free_port(), ssl=context)
    client = await make_client(**FAST | {"webhook_backoff": ()})
    task_id = await submit(client, wav_bytes, f"https://127.0.0.1:{server.port}/hook")
    done = await wait_webhook(client, task_id, {"failed", "delivered"})
    assert done["webhook"]["state"] == "failed" and done["webhook"]["attempts"] == 1
    assert "CERTIFICATE_VERIFY_FAILED" in done["webhook"]["last_error"]
    assert receiver.seen == []


async def test_a_name_matched_by_a_pattern_must_resolve_to_public_addresses(
    make_client: ClientFactory, aiohttp_server: Any, wav_bytes: bytes
) -> None:
    """'*' allows any https host, but localhost resolves to loopback: never sent there."""
    receiver = Receiver()
    url = await start(aiohttp_server, receiver)
    port = url.split(":")[2].split("/")[0]
    client = await make_client(**FAST | {"webhook_hosts": ("*",), "webhook_backoff": (0.1,)})
    resp = await upload(client, wav_bytes, callback_url=url)
    error = await assert_error(resp, 400, "CALLBACK_NOT_ALLOWED")
    assert error["message"] == "callback_url must use https."
    task_id = await submit(client, wav_bytes, f"https://localhost:{port}/hook")
    done = await wait_webhook(client, task_id, {"failed", "delivered"})
    assert done["webhook"]["state"] == "failed"
    assert "localhost resolves to a non-public address" in done["webhook"]["last_error"]
    assert receiver.seen == []


@pytest.mark.parametrize(
    ("hosts", "url", "code", "message"),
    [
        ((), "https://hooks.example.org/x", "CALLBACK_NOT_ALLOWED", "does not send webhooks"),
        (
            ("hooks.example.org",),
            "https://elsewhere.example.org/x",
            "CALLBACK_NOT_ALLOWED",
            "elsewhere",
        ),
        (("*.example.org",), "http://a.example.org/x", "CALLBACK_NOT_ALLOWED", "https"),
        (("*.example.org",), "https://example.org.evil.net/x", "CALLBACK_NOT_ALLOWED", "evil"),
        (("127.0.0.1",), "ftp://127.0.0.1/x", "BAD_REQUEST", "http or https URL"),
        (("127.0.0.1",), "not a url", "BAD_REQUEST", "http or https URL"),
        (("127.0.0.1",), "http://user:pw@127.0.0.1/x", "BAD_REQUEST", "http or https URL"),
        (("127.0.0.1",), "http://127.0.0.1:99999/x", "BAD_REQUEST", "http or https URL"),
        (("127.0.0.1",), "https:///x", "BAD_REQUEST", "http or https URL"),
        (("*",), "https://bücher.example/x", "BAD_REQUEST", "http or https URL"),
    ],
)
async def test_callbacks_refused(
    make_client: ClientFactory,
    wav_bytes: bytes,
    hosts: tuple[str, ...],
    url: str,
    code: str,
    message: str,
) -> None:
    client = await make_client(**FAST | {"webhook_hosts": hosts})
    resp = await upload(client, wav_bytes, callback_url=url)
    error = await assert_error(resp, 400, code)
    assert message in error["message"]
    resp = await client.post(
        "/api/tasks", json={"filename": "a.wav", "options": {"callback_url": url}}
    )
    await assert_error(resp, 400, code)
    listed = await (await client.get("/api/tasks")).json()
    assert listed["total"] == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"webhook_secret": "abc"}, "must start with whsec_"),
        ({"webhook_secret": "whsec_not*base64"}, "not base64"),
        ({"webhook_secret": "whsec_" + base64.b64encode(b"short").decode()}, "5 bytes"),
        ({"webhook_hosts": ("hooks.example.org",)}, "needs webhook_secret"),
        ({"webhook_secret": SECRET, "webhook_timeout": 0.0}, "webhook_timeout"),
    ],
)
def test_bad_webhook_settings_stop_the_start(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**overrides)


def test_webhook_settings_from_the_environment() -> None:
    config = Config.from_env(
        {
            "TRANSCRIBER_WEBHOOK_SECRET": SECRET,
            "TRANSCRIBER_WEBHOOK_HOSTS": "hooks.lab, *.example.org",
            "TRANSCRIBER_WEBHOOK_BACKOFF": "1, 2.5",
        }
    )
    assert config.webhook_hosts == ("hooks.lab", "*.example.org")
    assert config.webhook_backoff == (1.0, 2.5)
    with pytest.raises(ValueError, match="webhook_backoff"):
        Config.from_env({"TRANSCRIBER_WEBHOOK_BACKOFF": "1, soon"})
    assert (
        json.dumps(Config().webhook_backoff) == "[5.0, 30.0, 120.0, 300.0, 600.0, 1200.0, 1200.0]"
    )
