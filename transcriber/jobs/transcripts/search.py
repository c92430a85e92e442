"""Search across every transcript: a person's query made safe for FTS5, hits as the API shows.

Plain words are quoted one by one, as Datasette's escape_fts does, so a stray quote, a dash or
a colon is text and not FTS5 syntax; a "quoted phrase" stays a phrase and a word ending in *
(or a phrase) stays a prefix query. Every word must match (FTS5's implicit AND).
"""

from __future__ import annotations

import html
import re

from transcriber.jobs.transcripts.revisions import Transcripts
from transcriber.protocol.errors import ApiError
from transcriber.protocol.transcripts import HitLinks, SearchHit, SearchPage
from transcriber.store.transcripts import MARK_CLOSE, MARK_OPEN, BadQuery, Hit

_TOKENS = re.compile(r'"[^"]*"\*?|[^\s"]+\*?|"')


def fts_query(query: str) -> str:
    """The FTS5 MATCH expression for a person's query; empty when it holds no words."""
    parts = []
    for token in _TOKENS.findall(query):
        prefix = token.endswith("*")
        body = token.rstrip("*")
        if body.startswith('"') and body.endswith('"') and len(body) >= 2:
            body = body[1:-1]
        body = " ".join(body.split())
        if not any(char.isalnum() for char in body):
            continue  # punctuation alone: no token for FTS5 to match
        parts.append('"' + body.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(parts)


def snippet_html(snippet: str) -> str:
    """The snippet HTML-escaped, its matches in <mark>: safe to put in a page as it is."""
    return html.escape(snippet).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


def hit_model(hit: Hit) -> SearchHit:
    return SearchHit(
        task_id=hit.task_id,
        filename=hit.filename,
        segment=hit.index,
        start=hit.start,
        end=hit.end,
        speaker=hit.speaker,
        snippet=snippet_html(hit.snippet),
        links=HitLinks(task=f"/api/tasks/{hit.task_id}"),
    )


async def search(
    transcripts: Transcripts, query: str, limit: int, offset: int, owner: str | None = None
) -> SearchPage:
    """One page of hits, newest task first (only in `owner`'s tasks, if given); `next_offset`
    is null on the last page. The query's length and the page's bounds are the caller's
    (web/params.py SearchQuery)."""
    if not query.strip():
        raise ApiError("BAD_REQUEST", "Type something to search for.", "q is empty")
    match = fts_query(query)
    if not match:
        raise ApiError("BAD_REQUEST", "The search holds no words.", f"q={query[:100]!r}")
    await transcripts.sync()
    try:
        hits = await transcripts.store.search(match, limit + 1, offset, owner)
    except BadQuery as exc:
        raise ApiError("BAD_REQUEST", "The search could not be understood.", str(exc)) from exc
    more = len(hits) > limit
    return SearchPage(
        query=query,
        hits=[hit_model(hit) for hit in hits[:limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )
