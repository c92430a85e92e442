"""A real-model run (tiny.en, three voices) through a node of the dask executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import DATA, ClientFactory, upload
from .daskcluster import dask_overrides, executor_of, node_cluster, until
from .test_dask import reach

pytestmark = pytest.mark.slow


async def test_real_models_through_a_node(tmp_path: Path, make_client: ClientFactory) -> None:
    async with node_cluster(tmp_path, workers=1, device="cpu") as cluster:
        client = await make_client(
            **dask_overrides(cluster), pipeline="real", model="tiny.en", device="cpu"
        )
        executor = executor_of(client)
        await until(lambda: executor.nodes.admitted(), what="the node admitted")
        resp = await upload(client, (DATA / "voices.wav").read_bytes(), filename="voices.wav")
        task_id = (await resp.json())["id"]
        done = await reach(client, task_id, "complete", timeout=900)
        result = await (await client.get(f"/api/tasks/{task_id}/transcript")).json()
        await client.close()
    assert done["error"] is None and done["language"] == "en"
    assert result["model"] == "tiny.en" and len(result["speakers"]) == 3
    truth = json.loads((DATA / "voices.json").read_text())
    words = {w.strip(".,").lower() for t in truth for w in t["text"].split()}
    heard = {w.strip(".,").lower() for s in result["segments"] for w in s["text"].split()}
    assert len(words & heard) / len(words) > 0.8
