"""stream=true on POST /v1/audio/transcriptions: the transcript as Server-Sent Events, the way
OpenAI streams a transcription.

A `transcript.text.delta` goes out for each segment as the worker decodes it: the live store
(store/live.py) is read each time the task's snapshot counts more segments than were sent, and
the hub's long-poll wakes the loop at each change of the task. The last event is
`transcript.text.done` with the final transcript's text, or, for a task that ends without one
(failed, cancelled, deleted), an `error` event in OpenAI's error shape, which the official
client raises as openai.APIError.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response
from pydantic import BaseModel

from transcriber.jobs.transcripts.results import final_output
from transcriber.protocol.errors import CODES, reference
from transcriber.protocol.openai import (
    OpenAIErrorBody,
    StreamError,
    TranscriptTextDelta,
    TranscriptTextDone,
)
from transcriber.protocol.stages import Stage
from transcriber.store.live import LiveSegments
from transcriber.store.task import Task
from transcriber.web.keys import HUB, TASKS
from transcriber.web.security import secure

log = logging.getLogger(__name__)

# How long the loop waits for a change of the task before it looks whether the client left
# (aiohttp-sse's ping, every 15 s, is what finds that out).
LOOK_AGAIN = 30.0


def joined_text(texts: Iterable[str]) -> str:
    """A transcript's text as OpenAI gives it: the segments' texts joined by one space."""
    return " ".join(text.strip() for text in texts).strip()


def task_error(task: Task | None) -> tuple[int, OpenAIErrorBody]:
    """The status and body that say why a task ended without a transcript."""
    if task is None:
        code, message = "UNKNOWN_TASK", "The task was deleted before it finished."
    else:
        error = task.error or {"code": "CANCELLED", "message": CODES["CANCELLED"][1]}
        code, message = error["code"], error["message"]
    status = CODES.get(code, (500, ""))[0]
    return status, OpenAIErrorBody.of(status, message, code.lower())


class _Deltas:
    """The segments sent so far, as deltas of one text."""

    def __init__(self, sse: EventSourceResponse, live: LiveSegments, task_id: str) -> None:
        self.sse, self.live, self.task_id = sse, live, task_id
        self.last = -1  # the index of the last segment sent
        self.started = False

    async def send_new(self) -> None:
        """A delta for each segment stored after the last one sent. A resumed run stores some
        indices again: text already sent cannot be taken back, so those are skipped."""
        while rows := await self.live.after(self.task_id, self.last):
            for row in rows:
                text = row["text"].strip()
                if text:
                    delta = f" {text}" if self.started else text
                    await _send(self.sse, TranscriptTextDelta(delta=delta))
                    self.started = True
            self.last = rows[-1]["index"]


async def stream_transcript(
    request: web.Request, task_id: str, headers: dict[str, str]
) -> web.StreamResponse:
    """Follow the task to its end, as events; the response is sent by then."""
    headers = dict(headers)
    secure(request, headers)  # sent now, not by the middleware
    async with sse_response(request, headers=headers, allow_all_methods=True) as sse:
        try:
            if await _follow(request.app, _Deltas(sse, request.app[TASKS].live, task_id)):
                await _send(sse, await _ending(request.app, task_id))
        except (ConnectionResetError, TimeoutError):
            log.info("the client of task %s's stream left before its end", task_id)
        except Exception:
            # The answer has begun: the error goes as its last event, not as a new answer.
            ref = reference()
            log.exception("the stream of task %s failed [ref %s]", task_id, ref)
            message = f"{CODES['INTERNAL'][1]} (reference {ref} in the server's log)"
            with suppress(ConnectionResetError, TimeoutError):
                await _send(sse, StreamError(error=OpenAIErrorBody.of(500, message, "internal")))
    return sse


async def _follow(app: web.Application, deltas: _Deltas) -> bool:
    """Send the deltas until the task ends; False if the client left before."""
    hub = app[HUB]
    snapshot = hub.latest(deltas.task_id)
    while snapshot is not None and not Stage(snapshot["stage"]).terminal:
        # The segments are stored before the snapshot that counts them is published.
        if snapshot["segments_count"] > deltas.last + 1:
            await deltas.send_new()
        if not deltas.sse.is_connected():
            return False
        snapshot = await hub.wait(deltas.task_id, snapshot["seq"], LOOK_AGAIN)
    await deltas.send_new()
    return True


async def _ending(app: web.Application, task_id: str) -> BaseModel:
    task = await app[TASKS].get(task_id)
    if task is None or task.stage != Stage.COMPLETE:
        return StreamError(error=task_error(task)[1])
    data: dict[str, Any] = final_output(app[TASKS], task)
    return TranscriptTextDone(text=joined_text(s["text"] for s in data["segments"]))


async def _send(sse: EventSourceResponse, event: BaseModel) -> None:
    await sse.send(event.model_dump_json())
