"""Credentials: the optional token and the keys per person (jobs/access.py), each as a bearer
header for programs or an HttpOnly session cookie for the page; and who may see which task.

A token or any key switches authentication on. The token is the admin's key. A credential
never travels in a URL (URLs end up in logs, history and Referer headers). The page signs in
once (POST /api/session, web/session.py) and the server answers with a cookie holding a digest
of the token or key, checked against the live set on each request: changing the token or
revoking the key signs those browsers out. A change made with the cookie must come from the
page's own origin: a cookie is sent on cross-site requests too. Whatever the credential, a
change a browser marks as cross-site is refused (web/security.py).

With `--visibility own`, a person who is not an admin reaches only their own tasks: every
route with a task id in its path answers another's task as it answers a task that does not
exist (404 UNKNOWN_TASK), so ids of others' tasks cannot even be confirmed.
"""

from __future__ import annotations

from aiohttp import web

from transcriber.jobs.access import ADMIN, Person, session_value
from transcriber.protocol.errors import ApiError
from transcriber.web.keys import CONFIG, KEYRING, PERSON, TASKS
from transcriber.web.middleware import Handler
from transcriber.web.parsing import bearer, same_secret
from transcriber.web.security import check_host, check_site, same_origin

COOKIE = "transcriber_session"
OPEN_PATHS = frozenset({"/api/health", "/api/session"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def required(request: web.Request) -> bool:
    """Whether requests need a credential: the server has a token, or a key exists."""
    return bool(request.app[CONFIG].token) or request.app[KEYRING].active


async def credential_holder(request: web.Request, given: str | None = None) -> Person | None:
    """Who the request's credential names: `given` (a sign-in), else the bearer header, else
    the session cookie; None when it names nobody."""
    token = request.app[CONFIG].token
    ring = request.app[KEYRING]
    given = bearer(request) if given is None else given
    if given is not None:
        if token and same_secret(given, token):
            return ADMIN
        return await ring.holder(given)
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        return None
    if token and same_secret(cookie, session_value(token)):
        return ADMIN
    return await ring.session_holder(cookie)


def authorized(request: web.Request) -> bool:
    """Whether the request holds a credential, or the server needs none (for open routes that
    say more to those who do, like /api/health)."""
    return PERSON in request


def person(request: web.Request) -> Person:
    """Who a request to a protected route acts as (the admin, on a server without credentials)."""
    return request[PERSON]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Host check and the cross-site check (web/security.py), then the credential, then
    whether its holder may see the task the path names."""
    ring = request.app[KEYRING]
    if ring.stale:  # keys relax the Host check, as a token does
        await ring.fresh()
    check_host(request)
    if request.method not in SAFE_METHODS:
        check_site(request)
    if not request.path.startswith(("/api/", "/v1/")):
        return await handler(request)
    holder = await credential_holder(request) if required(request) else ADMIN
    if holder is not None:
        request[PERSON] = holder
    if request.path in OPEN_PATHS:
        return await handler(request)
    if holder is None:
        if bearer(request) is not None:
            raise ApiError("UNAUTHORIZED", detail="the bearer token is not the server's nor a key")
        raise ApiError("UNAUTHORIZED", detail="send 'Authorization: Bearer <key>' or sign in")
    cookie = bearer(request) is None and required(request)
    if cookie and request.method not in SAFE_METHODS and not same_origin(request):
        raise ApiError("FORBIDDEN", "This request did not come from the server's own page.")
    await _check_visible(request, holder)
    return await handler(request)


async def check_visible(request: web.Request, task_id: str) -> None:
    """UNKNOWN_TASK when the person may not see the task a request names in its body (the
    middleware checks the ones in the path)."""
    await _check_visible(request, person(request), task_id)


async def _check_visible(request: web.Request, holder: Person, task_id: str | None = None) -> None:
    task_id = task_id or request.match_info.get("task_id")
    if task_id is None or holder.sees(request.app[CONFIG].visibility) is None:
        return
    task = await request.app[TASKS].get(task_id)
    if task is not None and not holder.may_see(request.app[CONFIG].visibility, task.owner):
        raise ApiError("UNKNOWN_TASK", detail=f"task {task_id!r}")
