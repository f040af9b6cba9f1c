"""The `sla-stream` command."""

from __future__ import annotations

from pathlib import Path

import click

from sla_stream import __version__
from sla_stream.analytics.forecast_cli import forecast_group
from sla_stream.analytics.report import report_command
from sla_stream.contracts_cli import contracts
from sla_stream.generate import generate_command
from sla_stream.importers.cli import import_group
from sla_stream.notify.cli import notify
from sla_stream.replay import replay_command
from sla_stream.web.token_cli import token_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sla-stream")
def main() -> None:
    """sla-stream: live SLA clocks, alerts and adherence on Kafka."""


@main.group()
def schemas() -> None:
    """JSON Schemas of the messages on every topic."""


@schemas.command("export")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
)
def schemas_export(directory: Path) -> None:
    """Regenerate the schema files from the models."""
    from sla_stream.schema_export import export_schemas

    for path in export_schemas(directory):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9092, show_default=True)
def broker(host: str, port: int) -> None:
    """Run the embedded Kafka-compatible broker (memory-only) until interrupted."""
    import contextlib
    import signal

    from sla_stream.broker import EmbeddedBroker

    with EmbeddedBroker(host, port) as b:
        click.echo(f"embedded broker listening on {b.bootstrap} (memory-only; Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


def _register() -> None:
    from sla_stream.stream_cli import demo, send, tail, worker

    for command in (worker, send, tail, demo):
        main.add_command(command)


_register()
main.add_command(replay_command)
main.add_command(generate_command)
main.add_command(contracts)
main.add_command(import_group)
main.add_command(report_command)
main.add_command(token_group)
main.add_command(notify)
main.add_command(forecast_group)

if __name__ == "__main__":
    main()
