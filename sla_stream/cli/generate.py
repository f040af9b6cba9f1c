"""`sla-stream generate`: a realistic synthetic stream of incident events."""

from __future__ import annotations

from pathlib import Path

import click

from sla_stream.cli.types import aware_instant
from sla_stream.generate import DEFAULT_CONTRACTS, DEFAULT_START, iter_events


@click.command("generate")
@click.option("--incidents", type=click.IntRange(min=0), required=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--start", help="first instant, ISO 8601 with offset  [default: 2026-01-05T08:00Z]")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="incidents per hour")
@click.option(
    "--contracts",
    "contracts_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="where contract ids come from  [default: examples/contracts.yaml]",
)
@click.option("--demo", is_flag=True, help="the `demo` contract, with windows of seconds")
def generate_command(
    incidents: int,
    seed: int,
    start: str | None,
    rate: float | None,
    contracts_path: Path | None,
    demo: bool,
) -> None:
    """Write a realistic synthetic stream of incident events (JSON lines) to stdout."""
    from sla_stream.core.contracts import load_contracts
    from sla_stream.core.errors import InvalidContract

    path = contracts_path or (DEFAULT_CONTRACTS if DEFAULT_CONTRACTS.exists() else None)
    try:
        contracts = load_contracts(path) if path is not None else None
    except InvalidContract as exc:
        raise click.ClickException(str(exc)) from None
    out = click.get_binary_stream("stdout")
    begin = aware_instant(start) or DEFAULT_START
    for event in iter_events(incidents, seed, begin, rate, contracts, demo):
        out.write(event.to_json() + b"\n")
    out.flush()
