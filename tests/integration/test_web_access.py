"""Every route of a worker built by `create_app` declares an access class, and the gate holds.

The route table is walked on the real aiohttp app of a real Faust app (built as the worker
builds it, its web server started on a loopback port, no broker needed): a route someone adds
without declaring its class fails `test_every_route_declares_an_access_class`, and each class is
tried without a credential, with the wrong ones and with the right one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest_asyncio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from sla_stream.broker import free_port
from sla_stream.settings import Settings
from sla_stream.web.access import CLUSTER_HEADER, VIEWER_COOKIE, Access
from sla_stream.web.auth import hash_token
from sla_stream.worker_app import SlaApp, create_app
from tests.integration.harness import System, WorkerProcess
from tests.integration.test_adherence import scripted_stream, start

VIEWER, PORTAL, INGEST = "viewer-token-1", "portal-token-acme", "ingest-token-1"
ADMIN = "admin-token-1"
SECRET = "cluster-secret-of-the-group"

# What a worker serves today; a new route adds itself here (and declares its class).
EXPECTED = {
    "/": Access.VIEWER,
    "/api/v1/dashboard": Access.VIEWER,
    "/api/v1/dashboard/series": Access.VIEWER,
    "/api/v1/adherence": Access.VIEWER,
    "/api/v1/adherence/contracts": Access.VIEWER,
    "/api/v1/incidents/at-risk": Access.VIEWER,
    "/api/v1/incidents/{incident_id}/explain": Access.VIEWER,
    "/capacity": Access.VIEWER,
    "/api/v1/capacity": Access.VIEWER,
    "/api/v1/portal/commitments": Access.PORTAL,
    "/api/v1/portal/incidents": Access.PORTAL,
    "/api/v1/portal/adherence": Access.PORTAL,
    "/api/v1/portal/incidents/{incident_id}/explain": Access.PORTAL,
    "/api/v1/events": Access.INGEST,
    "/api/v1/cluster/incidents": Access.CLUSTER,
    "/api/v1/cluster/explain": Access.CLUSTER,
    "/api/v1/admin/resume-events": Access.ADMIN,
    "/healthz": Access.OPEN,
    "/metrics": Access.OPEN,
}

BEARER = {
    name: {"Authorization": f"Bearer {token}"}
    for name, token in (
        ("viewer", VIEWER),
        ("portal", PORTAL),
        ("ingest", INGEST),
        ("admin", ADMIN),
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
    Access.ADMIN: [{}, BEARER["wrong"], BEARER["viewer"], BEARER["ingest"], MEMBER],
    Access.OPEN: [],
}
ALLOWED = {
    Access.VIEWER: [BEARER["viewer"], MEMBER],
    Access.PORTAL: [BEARER["portal"]],
    Access.INGEST: [BEARER["ingest"]],
    Access.CLUSTER: [MEMBER],
    Access.ADMIN: [BEARER["admin"]],
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
        concrete = path.replace("{incident_id}", "INC-1")  # a route's path parameter filled in
        async with self.http.request(
            method, self.server.make_url(concrete), headers=headers, data=body, **kw
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
        admin_token_hashes=[hash_token(ADMIN)],
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


# -- real workers on the embedded broker --------------------------------------------------------


def get(worker: WorkerProcess, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(worker.url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (Linux's /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                packed = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(packed[i : i + 4][::-1] for i in range(0, len(packed), 4))
                found.add(str(ipaddress.ip_address(words)))
    return found


REPORT_ARGS = ["--format", "json", "--from", "2026-Q1", "--to", "2026-Q3", "--step", "quarter"]


async def test_two_secured_workers_answer_together_with_the_cluster_secret(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    system = make_system(
        extra_env={
            "SLA_VIEWER_TOKEN_HASHES": f"{hash_token(VIEWER)}:ops",
            "SLA_CLUSTER_SECRET": SECRET,
        }
    )
    w1, w2 = await start(system, tmp_path, ("w1", "w2"))
    deadline = time.monotonic() + 90
    while sorted((w1.partitions() or []) + (w2.partitions() or [])) != list(range(4)):
        assert time.monotonic() < deadline, f"partitions not split:\n{w1.output()}"
        await asyncio.sleep(0.5)
    await system.send(scripted_stream(datetime.now(UTC) - timedelta(seconds=5)))
    query = "/api/v1/adherence?contract=acme&from=2026-Q1&to=2026-Q3&step=quarter"
    answers: dict[int, Any] = {}
    while len(answers) < 2:  # one of the two forwards to the owner (table_route)
        assert time.monotonic() < deadline + 60, f"no adherence: {answers}\n{w1.output()}"
        for w in (w1, w2):
            status, body = get(w, query, BEARER["viewer"])
            if status == 200 and [m["total"]["denominator"] for m in body["metrics"].values()] == [
                4,
                4,
                0,  # update cycles: none in this stream
            ]:
                answers[w.web_port] = body
        await asyncio.sleep(0.5)
    first, second = answers.values()
    assert first == second
    for w in (w1, w2):
        # Open incidents come from both members: every partition answered, with the secret.
        status, body = get(w, "/api/v1/dashboard", BEARER["viewer"])
        assert status == 200 and body["open_incidents"]["missing"] == [], body
        assert body["open_incidents"]["count"] == 1  # F is still open
        assert get(w, query, {})[0] == 401
        assert get(w, "/api/v1/cluster/incidents?at=2026-04-01T00:00:00%2B00:00", {})[0] == 401
        assert get(w, "/healthz", {})[0] == 200
        assert "1 viewer token(s), cluster secret set" in w.output()
    # The report command carries a viewer token too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
    done = subprocess.run(
        [sys.executable, "-m", "sla_stream.cli", "report", "--url", w2.url(""), *REPORT_ARGS],
        capture_output=True,
        timeout=120,
        env={**env, "SLA_VIEWER_TOKEN": VIEWER},
    )
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout) == [first]


async def test_a_worker_without_viewer_tokens_listens_on_loopback_only(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    system = make_system(extra_env={"SLA_WEB_HOST": "0.0.0.0"})
    await system.create_topics()
    w = system.worker("w1").start()
    w.wait_ready()
    assert listening_addresses(w.web_port) == {"127.0.0.1"}
    assert "listening on loopback only, 127.0.0.1:" in w.output()
    assert "(SLA_WEB_HOST=0.0.0.0 ignored)" in w.output()
    status, body = get(w, "/api/v1/adherence/contracts", {})
    assert status == 200 and body == {"contracts": []}  # open to local users, as before
