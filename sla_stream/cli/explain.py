"""`sla-stream explain INCIDENT`: each clock's deadline and how it was derived, from a replay
directory (or events and contracts files) or from a running worker."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import orjson

from sla_stream.cli.types import aware_instant


@click.command("explain")
@click.argument("incident_id")
@click.option(
    "--replay-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="a `sla-stream replay --out` directory: its contracts, events and end instant",
)
@click.option(
    "--contracts",
    "contracts_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="contracts file [default: the replay's]",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="events file, one JSON object a line [default: the replay's]",
)
@click.option("--at", "at_text", help="read the clocks at this instant [default: the replay's end]")
@click.option("--url", help="ask a running worker at this web address instead of a replay")
@click.option(
    "--token",
    envvar="SLA_VIEWER_TOKEN",
    help="a viewer token, for a worker with SLA_VIEWER_TOKEN_HASHES (default: $SLA_VIEWER_TOKEN)",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def explain_command(
    incident_id: str,
    replay_dir: Path | None,
    contracts_path: Path | None,
    events_path: Path | None,
    at_text: str | None,
    url: str | None,
    token: str | None,
    fmt: str,
) -> None:
    """Each clock of INCIDENT: deadline, contract version and clause, calendar, and the segments
    from its start to the stop (or to the end of the replay, or now) with their business time."""
    if url is not None:
        if replay_dir or contracts_path or events_path or at_text:
            raise click.UsageError("--url reads a worker now: leave out the replay options")
        body = _from_worker(url, incident_id, token)
    else:
        body = _from_files(incident_id, replay_dir, contracts_path, events_path, at_text)
    if fmt == "json":
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(body))


def _from_files(
    incident_id: str,
    replay_dir: Path | None,
    contracts_path: Path | None,
    events_path: Path | None,
    at_text: str | None,
) -> dict[str, Any]:
    from sla_stream.core.contracts import load_contracts
    from sla_stream.core.errors import InvalidContract
    from sla_stream.core.explain import explain
    from sla_stream.replay_explain import ReplayRun, incident_state

    until = None
    if replay_dir is not None:
        try:
            run = ReplayRun.read(replay_dir)
        except FileNotFoundError:
            raise click.ClickException(
                f"{replay_dir} has no replay.json: run `sla-stream replay --out {replay_dir}` "
                "again, or give --contracts, --events and --at"
            ) from None
        contracts_path = contracts_path or run.contracts
        events_path = events_path or run.events
        until = run.until
    if contracts_path is None or events_path is None:
        raise click.UsageError("give --replay-dir, or --contracts and --events (or --url)")
    at = aware_instant(at_text) or until
    try:
        contracts = load_contracts(contracts_path)
    except InvalidContract as exc:
        raise click.ClickException(str(exc)) from None
    state = incident_state(events_path, incident_id, contracts, at)
    if state is None or not state.events:
        raise click.ClickException(f"{incident_id}: no events in {events_path}")
    now = at or max(e.occurred_at for e in state.events)
    record = contracts.get(state.contract_id) if state.contract_id else None
    return explain(state, record, now).to_json()


def _from_worker(base: str, incident_id: str, token: str | None) -> dict[str, Any]:
    from sla_stream.web.explain_path import explain_path

    url = base.rstrip("/") + explain_path(incident_id)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            body: dict[str, Any] = orjson.loads(r.read())
            return body
    except urllib.error.HTTPError as exc:
        try:
            detail = orjson.loads(exc.read()).get("error", exc.reason)
        except (orjson.JSONDecodeError, AttributeError):
            detail = exc.reason
        raise click.ClickException(f"{url}: {exc.code} {detail}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None


def render(e: dict[str, Any]) -> str:
    """An explanation (`Explanation.to_json`) as text, times in each clock's calendar zone."""
    if e["waiting"]:
        return f"{e['incident_id']}: nothing to explain yet ({e['waiting']})"
    head = (
        f"{e['incident_id']}  contract {e['contract_id']} version {e['contract_version']} "
        f"(customer {e['customer_id']}), {e['severity']}, status {e['status'] or '-'}, "
        f"as of {e['as_of']}"
    )
    return "\n\n".join([head, *(_clock(c) for c in e["clocks"])])


def _clock(c: dict[str, Any]) -> str:
    tz = ZoneInfo(c["timezone"])
    state = "breached" if c["breached"] else c["phase"]
    if c["deadline_at"] is None:
        left = c["remaining_s"]
        due = (
            f"no deadline while paused ({_hours(left)} left)"
            if left is not None
            else "no deadline (paused when it ended)"
        )
    else:
        word = "breached at" if c["breached"] else "due" if c["ended_at"] is None else "was due"
        due = f"{word} {_local(c['deadline_at'], tz)}"
    ended = f", ended {_local(c['ended_at'], tz)}" if c["ended_at"] else ""
    lines = [
        f"{c['metric']} {c['severity']}: {state}, {_hours(c['elapsed_s'])} of "
        f"{_hours(c['allowance_s'])} business time, {due}",
        f"  clause {c['clause_id']} {c['clause_title']}; calendar {c['calendar']} "
        f"({c['timezone']}); started {_local(c['started_at'], tz)}{ended}",
    ]
    for s in c["segments"]:
        extra = " ".join(x for x in (s["status"], s["note"]) if x)
        lines.append(
            f"  {s['kind']:<21} {_local(s['start_at'], tz)}  {_local(s['end_at'], tz)}  "
            f"{_hours(s['business_s']):>9}  {s['severity']} {s['calendar']} {extra}".rstrip()
        )
    lines.append(f"  {'':<21} {'':<25}  {'sum':>25}  {_hours(c['elapsed_s']):>9}")
    return "\n".join(lines)


def _local(at: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(at).astimezone(tz).isoformat(timespec="seconds")


def _hours(seconds: float) -> str:
    """Business time as h:mm:ss (a fraction of a second kept when there is one)."""
    sign, left = ("-" if seconds < 0 else ""), abs(seconds)
    h, rest = divmod(left, 3600)
    m, s = divmod(rest, 60)
    text = f"{int(h)}:{int(m):02d}:{int(s):02d}"
    if s != int(s):
        text += f"{s - int(s):.6f}"[1:].rstrip("0")
    return sign + text
