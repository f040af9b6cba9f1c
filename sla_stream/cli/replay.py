"""`sla-stream replay`: the engine over a file of events, in simulated time."""

from __future__ import annotations

from pathlib import Path

import click

from sla_stream.cli.types import aware_instant
from sla_stream.replay import INVALID_FILE, SHOWN_INVALID, replay_stream
from sla_stream.replay_explain import ReplayRun


@click.command("replay")
@click.option(
    "--contracts",
    "contracts_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="contracts file (YAML or JSON)",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="incident events, one JSON object a line; - reads stdin",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="directory for alerts.jsonl and outcomes.jsonl",
)
@click.option("--until", help="fire dues up to this instant (ISO 8601) [default: the last event]")
def replay_command(
    contracts_path: Path, events_path: Path, out_dir: Path, until: str | None
) -> None:
    """Run the SLA engine over a file of events in simulated time; print a summary."""
    from sla_stream.core.contracts import load_contracts
    from sla_stream.core.errors import InvalidContract

    try:
        contracts = load_contracts(contracts_path)
    except InvalidContract as exc:
        raise click.ClickException(str(exc)) from None
    end = aware_instant(until, "2026-03-31T23:59:59Z")
    stdin = str(events_path) == "-"
    if stdin:
        summary = replay_stream(contracts, click.get_binary_stream("stdin"), None, out_dir, end)
    else:
        if not events_path.is_file():
            raise click.BadParameter(f"{events_path} is not a file", param_hint="--events")
        size = events_path.stat().st_size
        with events_path.open("rb") as source:
            summary = replay_stream(contracts, source, size, out_dir, end)
    ReplayRun(contracts_path, None if stdin else events_path, summary.until).write(out_dir)
    for number, reason in summary.invalid[:SHOWN_INVALID]:
        click.echo(f"{events_path}:{number}: skipped: {reason}", err=True)
    if len(summary.invalid) > SHOWN_INVALID:
        more = len(summary.invalid) - SHOWN_INVALID
        click.echo(f"... and {more} more invalid lines, all in {out_dir / INVALID_FILE}", err=True)
    click.echo(summary.render())
