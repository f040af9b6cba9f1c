"""`sla-stream report`: adherence, breaches per quarter and trends, from a worker or a replay."""

from __future__ import annotations

from pathlib import Path

import click

from sla_stream.analytics.report import (
    FORMATS,
    ReportError,
    render,
    reports_from_api,
    reports_from_replay,
)
from sla_stream.core.errors import SlaError
from sla_stream.core.periods import Step


@click.command("report")
@click.option(
    "--from", "from_text", required=True, help="start: date, quarter (2026-Q2) or instant"
)
@click.option("--to", "to_text", required=True, help="end (exclusive), same forms as --from")
@click.option("--contract", "contract_ids", multiple=True, help="contract id (repeatable)")
@click.option("--step", type=click.Choice(["hour", "day", "quarter"]), default="day")
@click.option("--metric", type=click.Choice(["first_response", "resolution", "update"]))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--url", help="a worker's web address (default: SLA_WEB_HOST:SLA_WEB_PORT)")
@click.option(
    "--token",
    envvar="SLA_VIEWER_TOKEN",
    help="a viewer token, for a worker with SLA_VIEWER_TOKEN_HASHES (default: $SLA_VIEWER_TOKEN)",
)
@click.option(
    "--replay-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="report from `sla-stream replay` output instead of a running system",
)
@click.option(
    "--contracts",
    "contracts_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="the contracts file the replay used (its zones define the periods)",
)
def report_command(
    from_text: str,
    to_text: str,
    contract_ids: tuple[str, ...],
    step: Step,
    metric: str | None,
    fmt: str,
    url: str | None,
    token: str | None,
    replay_dir: Path | None,
    contracts_file: Path | None,
) -> None:
    """Adherence rates per period, breaches per quarter, response-time trends, and each
    contract's service levels per month or quarter with the credits owed per quarter."""
    try:
        if replay_dir is not None:
            if contracts_file is None:
                raise click.UsageError("--replay-dir needs --contracts (periods use their zones)")
            from sla_stream.core.contracts import load_contracts

            contracts = load_contracts(contracts_file)
            reports = reports_from_replay(
                replay_dir, contracts, from_text, to_text, step, contract_ids, metric
            )
        else:
            from sla_stream.settings import Settings

            settings = Settings()
            base = url or f"http://{settings.web_host}:{settings.web_port}"
            reports = reports_from_api(
                base, from_text, to_text, step, contract_ids, metric, token=token
            )
    except (ReportError, SlaError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render(reports, fmt))
