"""The `sla-stream` command: every subcommand lives in a module of this package.

The commands parse options and print; the work is done by the modules they call (the core,
`stream/`, `analytics/`, `importers/`, `notify/`), none of which imports this package.
"""

from __future__ import annotations

from pathlib import Path

import click

from sla_stream import __version__
from sla_stream.cli.admin import resume_events_command
from sla_stream.cli.capacity import capacity
from sla_stream.cli.contracts import contracts
from sla_stream.cli.explain import explain_command
from sla_stream.cli.forecast import forecast_group
from sla_stream.cli.generate import generate_command
from sla_stream.cli.importers import import_group
from sla_stream.cli.notify import notify
from sla_stream.cli.replay import replay_command
from sla_stream.cli.report import report_command
from sla_stream.cli.stream import demo, send, tail, worker
from sla_stream.cli.tokens import token_group


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
    from sla_stream.processes import stop_on_signals

    stop_on_signals()  # SIGTERM and SIGHUP stop the broker as Ctrl-C does
    with contextlib.suppress(KeyboardInterrupt), EmbeddedBroker(host, port) as b:
        click.echo(f"embedded broker listening on {b.bootstrap} (memory-only; Ctrl-C stops it)")
        signal.pause()


for command in (worker, send, tail, demo):
    main.add_command(command)
main.add_command(replay_command)
main.add_command(explain_command)
main.add_command(generate_command)
main.add_command(contracts)
main.add_command(import_group)
main.add_command(report_command)
main.add_command(token_group)
main.add_command(notify)
main.add_command(resume_events_command)
main.add_command(capacity)
main.add_command(forecast_group)

if __name__ == "__main__":
    main()
