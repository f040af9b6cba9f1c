"""Who may call which HTTP route: every route declares an access class, one gate checks it.

Routes are added only through `Routes.page` (site.py's docstring shows how), which needs the
class. The gate is an aiohttp middleware on the worker's web app: it looks up the class of the
route a request matched before the route's view runs, and a route that declared none answers
500 instead of serving unchecked (tests/integration/test_web_access.py walks the route table and
fails on such a route).

    open     /healthz, /metrics            none (probes and scrapes; no customer data)
    viewer   /, /api/v1/dashboard*,        a viewer token, or the cluster secret
             /api/v1/adherence*
    portal   /api/v1/portal/*              a portal token (the view then scopes by customer)
    ingest   POST /api/v1/events           an ingest token
    cluster  /api/v1/cluster/*             the cluster secret
    admin    /api/v1/admin/*               an admin token (`SLA_ADMIN_TOKEN_HASHES`); with none
                                           configured, loopback clients only (403 otherwise)

Tokens are known by their SHA-256 only (`SLA_VIEWER_TOKEN_HASHES`, `SLA_PORTAL_TOKEN_HASHES`,
`SLA_INGEST_TOKEN_HASHES`; see auth.py). A viewer token comes as `Authorization: Bearer`, or in
a browser once as `?token=`: the gate then sets it in an HttpOnly cookie and redirects to the
same address without it, so it leaves the address bar and the page's own links keep working.
Workers send the cluster secret (`SLA_CLUSTER_SECRET`) in the `X-SLA-Cluster-Secret` header on
every request to a member, including the forwards of `table_route`; it is compared with
`hmac.compare_digest`, and it also opens viewer routes (a worker asks them on a viewer's behalf).

With no viewer token configured the worker listens on loopback only, whatever `SLA_WEB_HOST`
says (`bind_host`), and viewer routes (and, with no cluster secret, cluster routes) are open
to whoever can reach loopback, as `make run` expects. Viewer tokens need a cluster secret.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web
from faust.app.router import Router
from faust.exceptions import SameNode
from multidict import CIMultiDict

from sla_stream.settings import Settings
from sla_stream.web.admin import AdminAccess
from sla_stream.web.auth import TokenSet
from sla_stream.web.portal import portal_tokens
from sla_stream.web.replies import json_response

log = logging.getLogger(__name__)

CLUSTER_HEADER = "X-SLA-Cluster-Secret"
VIEWER_COOKIE = "sla_viewer"
TOKEN_PARAM = "token"
MIN_SECRET_CHARS = 16
LOOPBACK = "127.0.0.1"


class Access(StrEnum):
    """What a route asks of a caller."""

    OPEN = "open"
    VIEWER = "viewer"
    PORTAL = "portal"
    INGEST = "ingest"
    CLUSTER = "cluster"
    ADMIN = "admin"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_host(settings: Settings) -> str:
    """Where the web server listens: SLA_WEB_HOST, but loopback while no viewer token is set."""
    if settings.viewer_token_hashes or is_loopback(settings.web_host):
        return settings.web_host
    return LOOPBACK


def _parse(variable: str, entries: list[str], parse: Callable[[list[str]], TokenSet]) -> TokenSet:
    try:
        return parse(entries)
    except ValueError as exc:  # the message names the entry's position, never its value
        raise ValueError(f"{variable}: {exc}") from None


@dataclass(frozen=True)
class Keys:
    """The credentials each access class accepts, read from the settings once at start."""

    viewer: TokenSet
    portal: TokenSet
    ingest: TokenSet
    admin: TokenSet
    cluster_secret: bytes | None = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        """Raise ValueError naming the variable (never its value) for a bad configuration."""
        secret = settings.cluster_secret.get_secret_value() if settings.cluster_secret else ""
        secret = secret.strip()
        if secret and len(secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"SLA_CLUSTER_SECRET has fewer than {MIN_SECRET_CHARS} characters; "
                "`sla-stream token new` prints a good one"
            )
        if settings.viewer_token_hashes and not secret:
            raise ValueError(
                "SLA_VIEWER_TOKEN_HASHES is set, so the web server serves beyond loopback: set "
                "SLA_CLUSTER_SECRET too, the same on every worker (`sla-stream token new`)"
            )
        return cls(
            viewer=_parse("SLA_VIEWER_TOKEN_HASHES", settings.viewer_token_hashes, TokenSet.parse),
            portal=_parse("SLA_PORTAL_TOKEN_HASHES", settings.portal_token_hashes, portal_tokens),
            ingest=_parse("SLA_INGEST_TOKEN_HASHES", settings.ingest_token_hashes, TokenSet.parse),
            admin=_parse("SLA_ADMIN_TOKEN_HASHES", settings.admin_token_hashes, TokenSet.parse),
            cluster_secret=secret.encode() if secret else None,
        )

    @property
    def cluster_headers(self) -> dict[str, str]:
        """What a worker adds to every request it sends to a member (itself included)."""
        return {CLUSTER_HEADER: self.cluster_secret.decode()} if self.cluster_secret else {}

    def is_member(self, request: web.Request) -> bool:
        """The request carries the cluster secret (or none is configured: loopback only)."""
        if self.cluster_secret is None:
            return True
        presented = request.headers.get(CLUSTER_HEADER, "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(presented, self.cluster_secret)


_CHALLENGE = {
    Access.VIEWER: "a viewer token: `Authorization: Bearer <token>`, or open /?token=<token> "
    "once in a browser",
    Access.PORTAL: "a portal token: `Authorization: Bearer <token>`",
    Access.INGEST: "an ingest token: `Authorization: Bearer <token>`",
    Access.ADMIN: "an admin token: `Authorization: Bearer <token>`",
    Access.CLUSTER: f"the cluster secret in {CLUSTER_HEADER} (worker-to-worker requests only)",
}


class Gate:
    """Declared access classes by route, and the middleware that enforces them."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.classes: dict[str, Access] = {}  # aiohttp resource (path pattern) -> class

    def declare(self, resource: str, access: Access) -> None:
        if resource in self.classes and self.classes[resource] is not access:
            raise ValueError(f"{resource} is already declared {self.classes[resource]}")
        self.classes[resource] = access

    def access_of(self, request: web.Request) -> Access | None:
        resource = request.match_info.route.resource
        return None if resource is None else self.classes.get(resource.canonical)

    def install(self, web_app: web.Application) -> None:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.match_info.http_exception is not None:
                return await handler(request)  # 404, 405: there is nothing to protect
            access = self.access_of(request)
            if access is None:
                log.error("route %s declares no access class; refused", request.path)
                return json_response({"error": "this route declares no access class"}, 500)
            refusal = self.refusal(access, request)
            return refusal if refusal is not None else await handler(request)

        web_app.middlewares.append(gate)

    def refusal(self, access: Access, request: web.Request) -> web.StreamResponse | None:
        """None when the request may reach the route; else the answer to send instead."""
        keys = self.keys
        authorization = request.headers.get("Authorization")
        if access is Access.OPEN:
            return None
        if access is Access.ADMIN:
            refused = AdminAccess(keys.admin).refusal(authorization, request.remote)
            if refused is None:
                return None
            if refused.status != 401:  # 403: no admin tokens, and the caller is not on loopback
                return json_response(refused.body, refused.status)
            return _unauthorized(access, request)
        if access is Access.CLUSTER:
            allowed = keys.is_member(request)
        elif access is Access.PORTAL:
            allowed = keys.portal.authenticate(authorization) is not None
        elif access is Access.INGEST:
            allowed = keys.ingest.authenticate(authorization) is not None
        elif not keys.viewer:
            return None  # open viewing: the server listens on loopback only
        elif TOKEN_PARAM in request.query:
            return self._sign_in(request)
        else:
            allowed = (
                keys.viewer.authenticate(authorization) is not None
                or keys.viewer.verify(request.cookies.get(VIEWER_COOKIE)) is not None
                or (CLUSTER_HEADER in request.headers and keys.is_member(request))
            )
        return None if allowed else _unauthorized(access, request)

    def _sign_in(self, request: web.Request) -> web.StreamResponse:
        """A valid `?token=`: keep it in an HttpOnly cookie, and go to the address without it."""
        token = request.query[TOKEN_PARAM]
        if self.keys.viewer.verify(token) is None:
            return _unauthorized(Access.VIEWER, request)
        rest = [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
        response = web.Response(
            status=303, headers={"Location": str(request.rel_url.with_query(rest or None))}
        )
        # Lax, not Strict: following a link to the dashboard from elsewhere should stay signed in;
        # every viewer route is a read, so a cross-site request can change nothing.
        response.set_cookie(
            VIEWER_COOKIE, token, httponly=True, samesite="Lax", path="/", secure=request.secure
        )
        return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unauthorized(access: Access, request: web.Request) -> web.Response:
    # The realms the portal and ingest views have always answered with.
    challenge = (
        'Bearer realm="sla-stream portal"'
        if access is Access.PORTAL
        else 'Bearer realm="sla-stream"'
    )
    if access is not Access.CLUSTER and request.headers.get("Authorization"):
        challenge += ', error="invalid_token"'  # RFC 6750: say why when one was presented
    return json_response(
        {"error": f"this route needs {_CHALLENGE[access]}"}, 401, {"WWW-Authenticate": challenge}
    )


View = TypeVar("View")


class Routes:
    """The one way to add a route to the worker's web server: `page(path, access)`."""

    def __init__(self, app: Any, keys: Keys) -> None:
        self.app = app
        self.keys = keys
        self.gate = Gate(keys)
        self.gate.install(app.web.web_app)
        app.router.cluster_headers = keys.cluster_headers  # see ClusterRouter

    def page(self, path: str, access: Access, *, name: str | None = None) -> Callable[[View], View]:
        """`app.page(path, name=name)`, with the access class every route must declare."""
        access = Access(access)

        def register(view: View) -> View:
            router = self.app.web.web_app.router
            before = {r.canonical for r in router.resources()}
            registered = self.app.page(path, name=name)(view)
            added = {r.canonical for r in router.resources()} - before
            if not added:
                raise ValueError(f"{path} is routed already")
            for resource in added:
                self.gate.declare(resource, access)
            return registered

        return register


class ClusterRouter(Router):
    """Faust's router, whose forwards of `table_route`d requests carry the cluster secret.

    The request was let through by this worker's gate, so this worker vouches for it: any
    cluster header it came with is replaced by the real one.
    """

    cluster_headers: Mapping[str, str] = {}

    async def _route_req(self, dest_url: Any, web: Any, request: Any) -> Any:
        # Faust 0.15.3's `Router._route_req`, with the headers added.
        dest_ident = (host, port) = self._urlident(dest_url)
        if dest_ident == self._urlident(self.app.conf.canonical_url):
            raise SameNode()
        headers = CIMultiDict(request.headers)
        for name, value in self.cluster_headers.items():
            headers[name] = value
        routed_url = request.url.with_host(host).with_port(int(port))
        async with self.app.http_client.request(
            method=request.method, headers=headers, url=routed_url
        ) as response:
            return web.text(
                await response.text(), content_type=response.content_type, status=response.status
            )
