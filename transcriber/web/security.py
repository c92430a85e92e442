"""The edges a browser on a lab network can reach: Host names, origins, security headers.

docs/security.md gives the threat model and what each setting protects.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from transcriber.config import Config
from transcriber.protocol.errors import ApiError
from transcriber.web.keys import CONFIG, HOST_NAMES, HOST_VERDICTS, KEYRING

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})

# Scripts and styles from this server only, nothing inline, no framing. 'self' in connect-src
# covers the page's own WebSocket (ws: and wss: of the same host, CSP level 3).
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# The page and its modules; they change with each upgrade, so browsers revalidate (by ETag).
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# JSON, transcripts and media load nothing of their own: stricter, and fewer bytes per answer.
# media-src lets a browser tab play an /audio URL opened by itself.
API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; media-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def hostname(host: str) -> str:
    """The name in a Host (or Origin authority) value, without the port; [::1] -> ::1."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_names(config: Config) -> frozenset[str]:
    names = set(LOOPBACK_NAMES) | {hostname(h) for h in config.allowed_hosts}
    if config.host not in WILDCARDS:
        names.add(hostname(config.host))
    return frozenset(names)


def host_allowed(request: web.Request) -> bool:
    """Without a token or keys, only names of this server: DNS rebinding brings other names
    here."""
    if request.app[CONFIG].token or request.app[KEYRING].active:
        return True
    host = request.host or ""
    verdicts = request.app[HOST_VERDICTS]
    verdict = verdicts.get(host)
    if verdict is None:
        verdict = hostname(host) in request.app[HOST_NAMES]
        if len(verdicts) < 256:  # a client sending endless names gets no cache, not a big one
            verdicts[host] = verdict
    return verdict


def origin_allowed(request: web.Request, origin: str | None) -> bool:
    """The page's own origin on an allowed Host, or one the operator listed."""
    if origin is None:
        return True  # curl, websocat, scripts: no browser, no ambient credentials
    if origin in request.app[CONFIG].allowed_origins:
        return True
    scheme, _, authority = origin.partition("://")
    if scheme not in ("http", "https") or authority.lower() != (request.host or "").lower():
        return False
    return host_allowed(request)


def same_origin(request: web.Request) -> bool:
    """A request a browser sent from this server's own page (for cookie-authenticated changes)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and origin_allowed(request, origin)


def cross_site(request: web.Request) -> bool:
    """A request a browser says came from another site's page. Such a page can send a form or
    text/plain upload without asking (no CORS preflight), so it may change nothing, token or
    not. A same-site page (a sibling subdomain) passes only with an allowed Origin; scripts
    send neither header and pass."""
    origin = request.headers.get("Origin")
    if not origin_allowed(request, origin):
        return True
    site = request.headers.get("Sec-Fetch-Site")
    if site == "same-site":
        return origin is None
    return site not in (None, "same-origin", "none")


def check_site(request: web.Request) -> None:
    if cross_site(request):
        origin, site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
        raise ApiError(
            "FORBIDDEN",
            "Changes cannot come from another site's page.",
            f"Origin {origin!r}, Sec-Fetch-Site {site!r}",
        )


def check_host(request: web.Request) -> None:
    if not host_allowed(request):
        raise ApiError(
            "FORBIDDEN",
            "This server does not answer to that host name.",
            "the operator can add it with --allowed-hosts",
        )


def secure(request: web.Request, headers: MutableMapping[str, str]) -> None:
    """The security headers of an answer to `request` (web/middleware.py sets them)."""
    api = request.path.startswith(("/api/", "/v1/"))
    headers.update(API_HEADERS if api else PAGE_HEADERS)
