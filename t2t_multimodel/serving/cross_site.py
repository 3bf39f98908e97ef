"""Keeps other web pages from driving the API (CSRF and DNS rebinding).

`CrossSiteGuard` is an ASGI middleware in front of the whole application:

- A POST must say `Content-Type: application/json` (parameters such as
  `charset` allowed), else HTTP 415. A page on another site can only send a
  cross-site POST without asking first (a CORS preflight, which this server
  does not grant) with a text/plain, form or multipart body; requiring JSON
  therefore stops cross-site requests from running the model.
- The `Host` header must name this server, else HTTP 403. A DNS rebinding
  page (evil.example first resolving to its own server, then to 127.0.0.1)
  reaches the server from the browser with `Host: evil.example`, and would
  be same-origin for the browser. Allowed: `localhost` and `*.localhost`,
  any IP address literal (a page is never same-origin with an address it
  does not serve, so an address cannot be rebound), the names the operator
  passes (`allowed_hosts`, which `app.serve` extends with the `--host` it
  binds), and everything when `allowed_hosts` holds "*". The port is not
  compared: port forwarding and proxies change it, and a rebinding attack
  always uses the attacker's name. A request without `Host` (HTTP/1.0; no
  browser sends one) passes.

Errors are JSON, `{"error": "..."}`, like every other error of the server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette import datastructures, responses

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPE = "application/json"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_name(host: str) -> str:
    """The name or address in a `Host` header: no port, no [ ], lower case.

    E.g. "LocalHost:8501" -> "localhost", "[::1]:8501" -> "::1",
    "example.org." -> "example.org".
    """
    host = host.strip().lower()
    if _is_ip(host):  # A bare IPv6 address (invalid, but unambiguous).
        return host
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.split(":", 1)[0].rstrip(".")


class CrossSiteGuard:
    """ASGI middleware: the Host and POST Content-Type checks above.

    Args:
      app: the application to guard.
      allowed_hosts: names allowed in `Host` besides localhost names and IP
        addresses; "*" allows any.
    """

    def __init__(self, app: AsgiApp, allowed_hosts: Sequence[str] = ()):
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request with this `Host` header may be served."""
        if host is None or self.allow_any:
            return True
        name = host_name(host)
        return (
            name == "localhost"
            or name.endswith(".localhost")
            or name in self.allowed_hosts
            or _is_ip(name)
        )

    def _refusal(self, scope: Scope) -> responses.Response | None:
        headers = datastructures.Headers(scope=scope)
        host = headers.get("host")
        if not self.host_allowed(host):
            return responses.JSONResponse(
                {
                    "error": f"Host {host!r} is not allowed: this server "
                    "answers requests for localhost, IP addresses and the "
                    "names it is told (protection against DNS rebinding); "
                    f"start it with --allowed_hosts={host_name(host)} (or "
                    "'*' for any) to serve that name"
                },
                403,
            )
        if scope["method"] == "POST":
            content_type = headers.get("content-type", "")
            media_type = content_type.split(";", 1)[0].strip().lower()
            if media_type != JSON_TYPE:
                return responses.JSONResponse(
                    {
                        "error": f"Content-Type must be {JSON_TYPE}, got "
                        f"{content_type or 'none'!r}; e.g. curl -H "
                        f"'Content-Type: {JSON_TYPE}' -d @request.json URL"
                    },
                    415,
                )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
