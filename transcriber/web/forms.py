"""Reading an upload out of a request: the multipart form (text fields, then the file part)
and the bytes of a raw body, as plain async streams for jobs/intake. aiohttp's own error for a
body cut short becomes intake's UploadCut here, so that intake never sees aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, ClientPayloadError, MultipartReader, web

from transcriber.jobs.intake.upload import CHUNK, UploadCut
from transcriber.protocol.errors import ApiError


async def form_until_file(reader: MultipartReader) -> tuple[dict[str, list[str]], BodyPartReader]:
    """The one multipart loop: the text fields sent before the `file` part, and that part.

    The file is streamed, never held: options must come before it (curl -F keeps the order).
    A field sent twice is refused, unless its name marks a list ("name[]").
    """
    fields: dict[str, list[str]] = {}
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise ApiError("BAD_REQUEST", "Unexpected part in the form.")
        if part.name == "file":
            return fields, part
        if part.name in fields and not part.name.endswith("[]"):
            # Only a list field ("name[]") may come twice: a repeat is a client's mistake.
            raise ApiError("BAD_REQUEST", f"The form field {part.name!r} appears more than once.")
        value = (await part.read(decode=True)).decode("utf-8", "replace")
        fields.setdefault(part.name, []).append(value)
    raise ApiError("BAD_REQUEST", "The form has no 'file' field.")


async def drain_form(reader: MultipartReader) -> None:
    """Read past whatever follows the file part; it is not used."""
    while await reader.next() is not None:
        pass


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(CHUNK):
            yield chunk
    except ClientPayloadError as exc:
        raise UploadCut(f"{type(exc).__name__}: {exc}") from exc


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk
    except ClientPayloadError as exc:
        raise UploadCut(f"{type(exc).__name__}: {exc}") from exc
