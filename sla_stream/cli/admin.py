"""`sla-stream resume-events`: resume a worker's events topic paused by the dead-letter limit."""

from __future__ import annotations

import urllib.error
import urllib.request

import click
import orjson

from sla_stream.web.admin import RESUME_EVENTS_PATH


@click.command("resume-events")
@click.option(
    "--url",
    default="http://127.0.0.1:6066",
    show_default=True,
    help="the worker's web address (each worker pauses on its own: resume each one paused)",
)
@click.option(
    "--token",
    envvar="SLA_ADMIN_TOKEN",
    default=None,
    help="an admin bearer token (from $SLA_ADMIN_TOKEN); needed unless the worker is on loopback",
)
@click.option("--status", is_flag=True, help="only show the dead-letter limit's state")
def resume_events_command(url: str, token: str | None, status: bool) -> None:
    """Resume consuming the events topic after the dead-letter limit paused it.

    Fix the producer first: the limit pauses again once the ratio is passed again.
    """
    request = urllib.request.Request(
        url.rstrip("/") + RESUME_EVENTS_PATH, method="GET" if status else "POST"
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from exc
    except OSError as exc:
        raise click.ClickException(f"{url} did not answer: {exc}") from exc
    state = "paused" if body["paused"] else "consuming"
    if not status:
        state = "resumed" if body["resumed"] else f"not paused ({state})"
    click.echo(
        f"{state}: {body['dead_letters']} dead letters in the last {body['messages']} messages "
        f"(ratio {body['ratio']:.3f}, limit {body['max_ratio']})"
    )
