"""The `worker`, `send` and `tail` commands: running the system and talking to its topics."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click
import orjson

from sla_stream.settings import Settings


@click.command()
@click.option("--web-port", type=int, help="overrides SLA_WEB_PORT")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="SLA_DATA_DIR")
def worker(web_port: int | None, data_dir: Path | None) -> None:
    """Run a worker (starts the embedded broker when SLA_BROKER is unset)."""
    from sla_stream.processes import stop_on_signals
    from sla_stream.stream.worker import broker_for
    from sla_stream.worker_app import run_worker

    overrides = {k: v for k, v in {"web_port": web_port, "data_dir": data_dir}.items() if v}
    settings = Settings(**overrides)
    stop_on_signals()  # until Faust installs its own handlers: a signal still stops the broker
    with broker_for(settings) as bootstrap:
        click.echo(f"worker on {bootstrap}; web http://{settings.web_host}:{settings.web_port}/")
        sys.exit(run_worker(settings, bootstrap))


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--broker", "bootstrap", help="bootstrap servers (default: SLA_BROKER or embedded)")
def send(file: click.utils.LazyFile, bootstrap: str | None) -> None:
    """Validate a JSON-lines file of incident events and publish it, keyed by incident id."""
    from sla_stream.stream.client import publish_events, read_event_file
    from sla_stream.stream.worker import default_bootstrap

    settings = Settings()
    events, errors = read_event_file(file)
    for line, message in errors:
        click.echo(f"line {line}: {message}", err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} invalid line(s); nothing was sent")
    sent = asyncio.run(
        publish_events(
            bootstrap or default_bootstrap(settings), settings.topic("incident-events"), events
        )
    )
    click.echo(f"sent {sent} events")


@click.command()
@click.argument("what", type=click.Choice(["alerts", "outcomes", "dead-letter"]))
@click.option("--broker", "bootstrap", help="bootstrap servers (default: SLA_BROKER or embedded)")
@click.option("--json", "as_json", is_flag=True, help="print raw JSON lines")
@click.option("--from-beginning/--from-now", default=True, show_default=True)
def tail(what: str, bootstrap: str | None, as_json: bool, from_beginning: bool) -> None:
    """Print alerts, outcomes or dead letters as they arrive."""
    from sla_stream.stream.client import follow, format_message
    from sla_stream.stream.worker import default_bootstrap

    settings = Settings()

    def show(value: bytes) -> None:
        click.echo(value.decode() if as_json else format_message(what, orjson.loads(value)))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            follow(
                bootstrap or default_bootstrap(settings), settings.topic(what), show, from_beginning
            )
        )


@click.command()
@click.option(
    "--contracts",
    "contracts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("examples/contracts.yaml"),
    show_default=True,
)
def demo(contracts_file: Path) -> None:
    """Run everything: embedded broker, sample contracts, a worker and a live demo feed."""
    from sla_stream.demo import run_demo

    run_demo(contracts_file)
