"""--visibility own: two keys, each sees and changes only its own tasks; admins see all.

Every route of the table with a task id in its path is tried (a new route cannot slip
through): another person's task answers exactly as a task that does not exist, 404
UNKNOWN_TASK, never 403, so its id is not even confirmed.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from .conftest import ClientFactory, assert_error, tone_wav, wait_for_stage
from .test_keys import add_key, bearer

Client = TestClient[web.Request, web.Application]
ABSENT = "0123456789abcdef"


class Lab:
    """A server with --visibility own, the admin token, and keys for alice, bob and carol
    (an admin); alice and bob each made one complete task."""

    def __init__(self, client: Client, keys: dict[str, str], tasks: dict[str, str]) -> None:
        self.client = client
        self.keys = keys
        self.tasks = tasks

    def as_(self, name: str) -> dict[str, str]:
        return bearer(self.keys[name])


async def _complete(client: Client, key: str, filename: str) -> str:
    form = FormData()
    form.add_field("file", io.BytesIO(tone_wav(4.0)), filename=filename, content_type="audio/wav")
    resp = await client.post("/api/tasks", data=form, headers=bearer(key))
    assert resp.status == 201, await resp.text()
    task_id = str((await resp.json())["id"])
    await wait_for_stage(_As(client, key), task_id, {"complete"})
    return task_id


class _As:
    """The test client, every request with one person's key."""

    def __init__(self, client: Client, key: str) -> None:
        self.client, self.key = client, key

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.client.get(path, headers=bearer(self.key), **kwargs)


async def make_lab(make_client: ClientFactory, tmp_path: Path, visibility: str) -> Lab:
    data = tmp_path / "data"
    keys = {"admin": "the-admin-token"}
    for name, flags in (("alice", ()), ("bob", ()), ("carol", ("--admin",))):
        keys[name] = await asyncio.to_thread(add_key, data, name, *flags)
    client = await make_client(
        token=keys["admin"], visibility=visibility, plumbing_stage_seconds=0.05
    )
    tasks = {
        "alice": await _complete(client, keys["alice"], "alice.wav"),
        "bob": await _complete(client, keys["bob"], "bob.wav"),
    }
    return Lab(client, keys, tasks)


@pytest.fixture
async def lab(make_client: ClientFactory, tmp_path: Path) -> Lab:
    return await make_lab(make_client, tmp_path, "own")


def task_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every API route that names a task."""
    found = []
    for resource in app.router.resources():
        template = resource.canonical
        if "{task_id}" not in template or not template.startswith("/api/"):
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
                found.append((route.method, template))
    return found


async def listed(lab: Lab, who: str, **params: str) -> list[tuple[str, str]]:
    resp = await lab.client.get("/api/tasks", params=params, headers=lab.as_(who))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["total"] == len(body["tasks"])
    return [(t["filename"], t["owner"]) for t in body["tasks"]]


async def test_each_person_lists_their_own_and_admins_list_all(lab: Lab) -> None:
    assert await listed(lab, "alice") == [("alice.wav", "alice")]
    assert await listed(lab, "bob") == [("bob.wav", "bob")]
    everyone = [("bob.wav", "bob"), ("alice.wav", "alice")]
    assert await listed(lab, "carol") == everyone
    assert await listed(lab, "admin") == everyone
    assert await listed(lab, "carol", owner="alice") == [("alice.wav", "alice")]
    assert await listed(lab, "carol", owner="me") == []
    assert await listed(lab, "alice", owner="me") == [("alice.wav", "alice")]
    assert await listed(lab, "alice", owner="bob") == []  # asking is not seeing
    bad = await lab.client.get("/api/tasks", params={"owner": "a b"}, headers=lab.as_("carol"))
    await assert_error(bad, 400, "BAD_REQUEST")


async def test_every_task_route_answers_another_persons_task_as_unknown(lab: Lab) -> None:
    routes = task_routes(lab.client.server.app)
    # The table as it stands; a new route is tried here without being named.
    assert len(routes) >= 12 and ("DELETE", "/api/tasks/{task_id}") in routes
    alice, bob = lab.tasks["alice"], lab.tasks["bob"]
    for method, template in routes:
        path = template.format(task_id=alice, index=0, speaker="SPEAKER_00")
        resp = await lab.client.request(method, path, headers=lab.as_("bob"), json={})
        other = await assert_error(resp, 404, "UNKNOWN_TASK")
        missing = template.format(task_id=ABSENT, index=0, speaker="SPEAKER_00")
        resp = await lab.client.request(method, missing, headers=lab.as_("bob"), json={})
        if resp.status == 404:
            absent = await resp.json()
            assert other["message"] == absent["error"]["message"], (method, template)
    # Nothing of alice's changed; her own requests and an admin's go through.
    snap = await (await lab.client.get(f"/api/tasks/{alice}", headers=lab.as_("alice"))).json()
    assert (snap["stage"], snap["owner"]) == ("complete", "alice")
    for who in ("carol", "admin"):
        resp = await lab.client.get(f"/api/tasks/{bob}/transcript", headers=lab.as_(who))
        assert resp.status == 200 and "Plumbing segment" in await resp.text()
    resp = await lab.client.delete(f"/api/tasks/{bob}", headers=lab.as_("bob"))
    assert resp.status == 204
    assert await listed(lab, "admin") == [("alice.wav", "alice")]


async def test_a_task_named_in_a_body_is_checked_too(lab: Lab) -> None:
    """Voice profiles are made from a task named in the body, not the path."""
    alice = lab.tasks["alice"]
    body = {"task_id": alice, "speaker": "SPEAKER_00", "name": "Alice"}
    resp = await lab.client.post("/api/profiles", json=body, headers=lab.as_("bob"))
    await assert_error(resp, 404, "UNKNOWN_TASK")
    resp = await lab.client.post("/api/profiles", json=body, headers=lab.as_("alice"))
    assert resp.status == 201, await resp.text()
    profile = await resp.json()
    sample = {"task_id": alice, "speaker": "SPEAKER_00"}
    resp = await lab.client.post(
        f"/api/profiles/{profile['id']}/samples", json=sample, headers=lab.as_("bob")
    )
    await assert_error(resp, 404, "UNKNOWN_TASK")


async def test_the_websocket_treats_another_persons_task_as_unknown(lab: Lab) -> None:
    async with lab.client.ws_connect("/api/ws", headers=lab.as_("bob")) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await ws.send_json({"type": "subscribe", "task_id": lab.tasks["alice"]})
        error = await ws.receive_json(timeout=5)
        assert error["type"] == "error" and error["error"]["code"] == "UNKNOWN_TASK"
        assert error["error"]["task_id"] == lab.tasks["alice"]
        await ws.send_json({"type": "subscribe", "task_id": lab.tasks["bob"]})
        own = await ws.receive_json(timeout=5)
        assert own["type"] == "task" and own["task"]["id"] == lab.tasks["bob"]
        assert own["task"]["owner"] == "bob"


async def test_search_finds_only_what_a_person_may_see(lab: Lab) -> None:
    async def hits(who: str) -> set[str]:
        resp = await lab.client.get(
            "/api/search", params={"q": "segment", "limit": "100"}, headers=lab.as_(who)
        )
        assert resp.status == 200, await resp.text()
        return {hit["task_id"] for hit in (await resp.json())["hits"]}

    assert await hits("alice") == {lab.tasks["alice"]}
    assert await hits("bob") == {lab.tasks["bob"]}
    assert await hits("carol") == set(lab.tasks.values())


async def test_the_openai_route_makes_tasks_of_its_caller(lab: Lab) -> None:
    form = FormData()
    form.add_field(
        "file", io.BytesIO(tone_wav(2.0)), filename="alice.wav", content_type="audio/wav"
    )
    form.add_field("response_format", "json")
    resp = await lab.client.post("/v1/audio/transcriptions", data=form, headers=lab.as_("bob"))
    assert resp.status == 200, await resp.text()
    task_id = resp.headers["x-transcriber-task"]
    assert task_id not in lab.tasks.values()
    assert ("alice.wav", "bob") in await listed(lab, "bob")
    await assert_error(
        await lab.client.get(f"/api/tasks/{task_id}", headers=lab.as_("alice")), 404, "UNKNOWN_TASK"
    )


async def test_visibility_all_lets_everyone_see_everything(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    lab = await make_lab(make_client, tmp_path, "all")
    assert await listed(lab, "bob") == [("bob.wav", "bob"), ("alice.wav", "alice")]
    assert await listed(lab, "bob", owner="me") == [("bob.wav", "bob")]
    resp = await lab.client.get(f"/api/tasks/{lab.tasks['alice']}", headers=lab.as_("bob"))
    assert resp.status == 200 and (await resp.json())["owner"] == "alice"
