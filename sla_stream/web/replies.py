"""JSON answers of the worker's web routes: one `Reply` value and one way to send it.

Views that decide an answer apart from aiohttp (ingest, portal, admin) return a `Reply`;
`json_reply` sends a body from a Faust view, `json_response` from aiohttp itself (the access
gate's middleware runs before any view). orjson serialises what Faust's json helper cannot
(datetimes, dataclasses' dicts with floats of any kind).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """An answer decided by a route's logic: status, JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(
    view: Any, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Any:
    """Send `body` as JSON from a Faust view."""
    return view.bytes(
        orjson.dumps(body), content_type="application/json", status=status, headers=headers
    )


def send_reply(view: Any, reply: Reply) -> Any:
    return json_reply(view, reply.body, reply.status, reply.headers or None)


def json_response(body: Any, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    """Send `body` as JSON from aiohttp directly (middleware)."""
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )
