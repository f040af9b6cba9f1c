"""The `sla-stream` command: every subcommand lives in a module of this package.

The commands parse options and print; the work is done by the modules they call (the core,
`stream/`, `analytics/`, `importers/`, `notify/`), none of which imports this package.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from sla_stream import __version__

# Each command's module, imported when the command runs (or `--help` lists it): importing them
# all took 0.6 s of CPU (aiohttp, numpy, ...) before a command as small as `import` began.
COMMANDS = {
    "worker": "sla_stream.cli.stream:worker",
    "send": "sla_stream.cli.stream:send",
    "tail": "sla_stream.cli.stream:tail",
    "demo": "sla_stream.cli.stream:demo",
    "replay": "sla_stream.cli.replay:replay_command",
    "explain": "sla_stream.cli.explain:explain_command",
    "generate": "sla_stream.cli.generate:generate_command",
    "contracts": "sla_stream.cli.contracts:contracts",
    "import": "sla_stream.cli.importers:import_group",
    "report": "sla_stream.cli.report:report_command",
    "token": "sla_stream.cli.tokens:token_group",
    "notify": "sla_stream.cli.notify:notify",
    "resume-events": "sla_stream.cli.admin:resume_events_command",
    "capacity": "sla_stream.cli.capacity:capacity",
    "forecast": "sla_stream.cli.forecast:forecast_group",
}


class _LazyGroup(click.Group):
    """A group whose commands in `COMMANDS` are imported only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, name = COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


if __name__ == "__main__":
    main()
