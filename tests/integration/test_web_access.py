"""Every route of a worker built by `create_app` declares an access class, and the gate holds.

The route table is walked on the real aiohttp app of a real Faust app (built as the worker
builds it, its web server started on a loopback port, no broker needed): a route someone adds
without declaring its class fails `test_every_route_declares_an_access_class`, and each class is
tried without a credential, with the wrong ones and with the right one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from sla_stream.broker import free_port
from sla_stream.settings import Settings
from sla_stream.stream.app import SlaApp, create_app
from sla_stream.web.access import CLUSTER_HEADER, VIEWER_COOKIE, Access
from sla_stream.web.auth import hash_token

VIEWER, PORTAL, INGEST = "viewer-token-1", "portal-token-acme", "ingest-token-1"
SECRET = "cluster-secret-of-the-group"

# What a worker serves today; a new route adds itself here (and declares its class).
EXPECTED = {
    "/": Access.VIEWER,
    "/api/v1/dashboard": Access.VIEWER,
    "/api/v1/dashboard/series": Access.VIEWER,
    "/api/v1/adherence": Access.VIEWER,
    "/api/v1/adherence/contracts": Access.VIEWER,
    "/api/v1/portal/commitments": Access.PORTAL,
    "/api/v1/portal/incidents": Access.PORTAL,
    "/api/v1/portal/adherence": Access.PORTAL,
    "/api/v1/events": Access.INGEST,
    "/api/v1/cluster/incidents": Access.CLUSTER,
    "/healthz": Access.OPEN,
    "/metrics": Access.OPEN,
}

BEARER = {
    name: {"Authorization": f"Bearer {token}"}
    for name, token in (
        ("viewer", VIEWER),
        ("portal", PORTAL),
        ("ingest", INGEST),
        ("wrong", "not-a-token"),
    )
}
MEMBER = {CLUSTER_HEADER: SECRET}
NOT_MEMBER = {CLUSTER_HEADER: "a-wrong-secret-of-16+chars"}

# Per class: credentials that must be refused, and the ones that must get through.
REFUSED = {
    Access.VIEWER: [{}, BEARER["wrong"], BEARER["portal"], BEARER["ingest"], NOT_MEMBER],
    Access.PORTAL: [{}, BEARER["wrong"], BEARER["viewer"], BEARER["ingest"], MEMBER],
    Access.INGEST: [{}, BEARER["wrong"], BEARER["viewer"], BEARER["portal"], MEMBER],
    Access.CLUSTER: [{}, BEARER["viewer"], NOT_MEMBER, {**BEARER["viewer"], **NOT_MEMBER}],
    Access.OPEN: [],
}
ALLOWED = {
    Access.VIEWER: [BEARER["viewer"], MEMBER],
    Access.PORTAL: [BEARER["portal"]],
    Access.INGEST: [BEARER["ingest"]],
    Access.CLUSTER: [MEMBER],
    Access.OPEN: [{}],
}


@dataclass
class Served:
    sla: SlaApp
    server: TestServer
    http: ClientSession

    async def request(self, path: str, headers: dict[str, str], **kw: Any) -> tuple[int, Any]:
        method = "POST" if EXPECTED.get(path) is Access.INGEST else "GET"
        body = b"[]" if method == "POST" else None
        async with self.http.request(
            method, self.server.make_url(path), headers=headers, data=body, **kw
        ) as response:
            await response.read()
            return response.status, response


def secured_settings(data_dir: Path) -> Settings:
    return Settings(
        broker="127.0.0.1:1",  # never reached: no agent runs here
        data_dir=data_dir,
        web_port=free_port(),  # the dashboard asks its own URL: make that nobody's
        viewer_token_hashes=[hash_token(VIEWER)],
        portal_token_hashes=[f"{hash_token(PORTAL)}:acme-corp"],
        ingest_token_hashes=[hash_token(INGEST)],
        cluster_secret=SECRET,
    )


async def sneaky(view: Any, request: Any) -> Any:
    return view.json({"leak": True})


async def serve(settings: Settings, *, bypass: bool = False) -> tuple[SlaApp, TestServer]:
    sla = create_app(settings, "127.0.0.1:1")
    if bypass:  # a route added straight onto Faust, without declaring its access class
        sla.faust.page("/api/v1/sneaky")(sneaky)
    sla.faust.web.init_server()  # what the worker's web service does at start: blueprints
    server = TestServer(sla.faust.web.web_app, host="127.0.0.1")
    await server.start_server()
    return sla, server


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, bypass: bool = False) -> AsyncIterator[Served]:
    sla, server = await serve(settings, bypass=bypass)
    try:
        async with ClientSession() as http:
            yield Served(sla, server, http)
    finally:
        await server.close()
        if sla.faust._http_client is not None:
            await sla.faust._http_client.close()


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(secured_settings(tmp_path)) as served:
        yield served


def undeclared(sla: SlaApp) -> list[str]:
    classes = sla.routes.gate.classes
    return sorted(
        f"{r.method} {r.resource.canonical}"
        for r in sla.faust.web.web_app.router.routes()
        if r.resource is not None and r.resource.canonical not in classes
    )


def routed_paths(sla: SlaApp) -> set[str]:
    return {r.resource.canonical for r in sla.faust.web.web_app.router.routes() if r.resource}


async def test_every_route_declares_an_access_class(served: Served) -> None:
    assert undeclared(served.sla) == []
    assert routed_paths(served.sla) == set(EXPECTED)
    assert {p: served.sla.routes.gate.classes[p] for p in EXPECTED} == EXPECTED


async def test_each_class_refuses_the_wrong_credentials_and_admits_the_right(
    served: Served,
) -> None:
    for path in sorted(routed_paths(served.sla)):
        access = served.sla.routes.gate.classes[path]
        for headers in REFUSED[access]:
            status, response = await served.request(path, headers)
            assert status == 401, (path, headers, status)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for headers in ALLOWED[access]:
            status, _ = await asyncio.wait_for(served.request(path, headers), 30)
            assert status != 401, (path, headers, status)


async def test_a_route_added_around_the_declaration_is_found_and_refused(tmp_path: Path) -> None:
    async with serving(secured_settings(tmp_path), bypass=True) as served:
        assert undeclared(served.sla) == ["GET /api/v1/sneaky", "HEAD /api/v1/sneaky"]
        status, _ = await served.request("/api/v1/sneaky", BEARER["viewer"])
        assert status == 500  # refused, not served unchecked


async def test_a_browser_signs_in_once_by_query_and_keeps_a_cookie(served: Served) -> None:
    status, response = await served.request(
        f"/?token={VIEWER}&contract=acme", {}, allow_redirects=False
    )
    assert status == 303
    assert response.headers["Location"] == "/?contract=acme"  # the token leaves the address
    cookie = response.cookies[VIEWER_COOKIE]
    assert cookie.value == VIEWER and cookie["httponly"] and cookie["samesite"] == "Lax"
    cookies = {"Cookie": f"{VIEWER_COOKIE}={VIEWER}"}
    for path in ("/", "/api/v1/dashboard", "/api/v1/adherence/contracts"):
        status, _ = await served.request(path, cookies)
        assert status != 401, path
    status, _ = await served.request("/", {"Cookie": f"{VIEWER_COOKIE}=stale"})
    assert status == 401
    status, response = await served.request("/?token=wrong", {}, allow_redirects=False)
    assert status == 401 and VIEWER_COOKIE not in response.cookies


async def test_without_viewer_tokens_viewer_and_cluster_routes_stay_open_on_loopback(
    tmp_path: Path,
) -> None:
    settings = Settings(
        broker="127.0.0.1:1", data_dir=tmp_path, web_host="0.0.0.0", web_port=free_port()
    )
    sla, server = await serve(settings)
    try:
        assert sla.faust.conf.web_bind == "127.0.0.1"
        assert str(sla.faust.conf.canonical_url).startswith("http://127.0.0.1:")
        async with ClientSession() as http:
            for path in ("/api/v1/adherence/contracts", "/api/v1/cluster/incidents"):
                async with http.get(server.make_url(path)) as response:
                    assert response.status != 401, path
            async with http.get(server.make_url("/api/v1/portal/commitments")) as response:
                assert response.status == 401  # portal and ingest keep their tokens
    finally:
        await server.close()
