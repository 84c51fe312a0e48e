"""What a web page may not do through a browser: reach the API under a foreign name, or, when it runs without
keys, change anything from another site.

Without keys, anyone who can reach the server is its administrator. A browser on this machine can reach it,
so two kinds of page could act through it:
- a page of another site whose name is made to resolve to 127.0.0.1 (DNS rebinding) is same-origin with the
  server as far as the browser knows, and may read and write anything; its requests carry its own name in
  `Host`, so the API answers only the names in `ALLOWED_HOSTS`;
- any site's page can send a form (a cancel, a multipart upload) to http://127.0.0.1:8000 without asking
  anyone; browsers mark such requests with `Sec-Fetch-Site` (and `Origin`), so the API refuses those that
  would change something.

The rule, for each request:
1. Its `Host` must be allowed: one of `ALLOWED_HOSTS` (an entry with a port matches that port only, one without
   it any port; `*` matches any Host). Unset, any Host is allowed while keys are on, and without keys only
   127.0.0.1, localhost and [::1] at the port the server listens on. Otherwise: 400.
2. Without keys, a request other than GET, HEAD or OPTIONS must not be cross-site: it is allowed when its
   `Origin` is one of `CORS_ORIGINS`; else, when it has `Sec-Fetch-Site`, that must be `same-origin` (or `none`,
   what the user typed); else, when it has `Origin`, that must name the same host and port as `Host`; a request
   with neither header is no browser's (curl, scripts) and is allowed. Otherwise: 403.
With keys, step 2 is moot: a page of another site cannot send the key, which is no cookie, and stands or falls
by the key it has.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings
from service.errors import problem

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(host: str, default_port: int | None) -> tuple[str, int | None]:
    """`name:port` as (name, port), lower case, IPv6 addresses in brackets; no port: `default_port`."""
    name, colon, port = host.lower().rpartition(":")
    if not colon or name.endswith(":") or (name.startswith("[") and not name.endswith("]")) or not port.isdigit():
        return host.lower(), default_port
    return name, int(port)


class BrowserGuard:
    """Applies the rule above to every HTTP request."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.keyless = settings.auth == "off"
        self.allowed_hosts = settings.allowed_hosts
        self.cors_origins = set(settings.cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.host_allowed(host, scope):
            detail = f"this server does not answer to the Host `{host}`; its ALLOWED_HOSTS setting names those it does"
            await problem(400, detail)(scope, receive, send)
            return
        if self.keyless and scope["method"] not in SAFE_METHODS and self.cross_site(headers, host):
            detail = "a cross-site request may not change anything on a server that runs without API keys"
            await problem(403, detail)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def host_allowed(self, host: str, scope: Scope) -> bool:
        allowed = self.allowed_hosts
        if allowed is None:
            if not self.keyless:
                return True
            server = scope.get("server")
            allowed = [f"{name}:{server[1]}" if server and server[1] else name for name in LOOPBACK_NAMES]
        if "*" in allowed:
            return True
        default_port = DEFAULT_PORTS.get(scope["scheme"])
        name, port = split_host(host, default_port)
        for entry in allowed:
            allowed_name, allowed_port = split_host(entry, None)
            if name == allowed_name and allowed_port in (None, port):
                return True
        return False

    def cross_site(self, headers: Headers, host: str) -> bool:
        origin = headers.get("origin")
        if origin in self.cors_origins:
            return False
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site not in ("same-origin", "none")
        return origin is not None and urlsplit(origin).netloc.lower() != host.lower()
