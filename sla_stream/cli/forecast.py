"""`sla-stream forecast train|evaluate`: fit a breach-risk model, or run the protocol on a log."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import orjson

from sla_stream.core.models import Outcome

PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("forecast")
def forecast_group() -> None:
    """Breach-risk forecast: train a model, evaluate the protocol on a ServiceNow log."""


@forecast_group.command("train")
@click.option("--events", "events_path", required=True, type=PATH, help="events (JSON lines)")
@click.option("--contracts", "contracts_path", required=True, type=PATH, help="contracts file")
@click.option(
    "--outcomes",
    "outcomes_path",
    type=click.Path(exists=True, path_type=Path),
    help="labels: outcomes.jsonl of a replay (or its directory), or a dump of sla.outcomes; "
    "default: the engine's own outcomes of these events",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--with-desk", is_flag=True, help="use the desk-state features too")
@click.option(
    "--calibration-share",
    type=click.FloatRange(0.05, 0.5),
    default=0.2,
    show_default=True,
    help="share of incidents, the latest opened, held out to calibrate on",
)
def train_command(
    events_path: Path,
    contracts_path: Path,
    outcomes_path: Path | None,
    out: Path,
    with_desk: bool,
    calibration_share: float,
) -> None:
    """Train a calibrated model on a history of events; label: the resolution clock breached."""
    from sla_stream.analytics.forecast import train
    from sla_stream.analytics.forecast_data import group_incidents, rows_and_verdicts
    from sla_stream.analytics.forecast_eval import recency_weights
    from sla_stream.core.contracts import load_contracts
    from sla_stream.replay import ReplaySummary, read_events

    started = time.monotonic()
    contracts = load_contracts(contracts_path)
    summary = ReplaySummary()
    with events_path.open("rb") as source:
        incidents = group_incidents(read_events(source, summary))
    if summary.invalid:
        number, reason = summary.invalid[0]
        click.echo(
            f"{len(summary.invalid)} invalid lines in {events_path} skipped "
            f"(first: line {number}: {reason})",
            err=True,
        )
    rows, verdicts = rows_and_verdicts(incidents, contracts)
    if outcomes_path is not None:
        verdicts = read_verdicts(outcomes_path)
    rows = [r for r in rows if r.incident_id in verdicts]
    labels = np.array([verdicts[r.incident_id] for r in rows], dtype=bool)
    if len(rows) == 0 or labels.all() or not labels.any():
        raise click.ClickException(
            f"{len(rows)} labelled decision rows, {int(labels.sum())} breached: "
            "a model needs settled incidents of both kinds"
        )
    opened = np.array([r.opened_at.timestamp() for r in rows])
    cut = np.quantile(opened, 1.0 - calibration_share)
    model = train(
        [r.features for r in rows],
        labels,
        opened >= cut,
        with_desk=with_desk,
        weights=recency_weights(rows, 14.0),
        trained={"events": events_path.name, "incidents": len(verdicts)},
    )
    model.save(out)
    click.echo(
        f"wrote {out}: model {model.version}, {len(rows)} decision rows of {len(verdicts)} "
        f"incidents ({labels.mean():.0%} breached), {time.monotonic() - started:.1f} s"
    )


def read_verdicts(path: Path) -> dict[str, bool]:
    """Incident -> its resolution clock breached, from outcome records (withdrawals undone)."""
    if path.is_dir():
        path = path / "outcomes.jsonl"
    live: dict[str, tuple[str, bool]] = {}
    with path.open("rb") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                o = Outcome.model_validate_json(line)
            except ValueError as exc:
                raise click.ClickException(f"{path} line {number}: not an outcome ({exc})") from exc
            if o.metric != "resolution":
                continue
            if o.withdraws is not None:
                if live.get(o.incident_id, ("",))[0] == o.withdraws:
                    del live[o.incident_id]
            else:
                live[o.incident_id] = (o.outcome_id, o.met)
    return {i: not met for i, (_, met) in live.items()}


@forecast_group.command("evaluate")
@click.option(
    "--log",
    "log",
    type=PATH,
    default="examples/servicenow/data/incident_event_log.csv.gz",
    show_default=True,
    help="ServiceNow incident event log (CSV, gzip or not)",
)
@click.option("--mapping", type=PATH, default="examples/servicenow/mapping.yaml", show_default=True)
@click.option(
    "--contracts", type=PATH, default="examples/servicenow/contracts.yaml", show_default=True
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def evaluate_command(log: Path, mapping: Path, contracts: Path, fmt: str) -> None:
    """Run the forecast protocol (docs/forecast.md) on a ServiceNow log and print its figures."""
    from sla_stream.analytics.forecast_eval import LabelError, evaluate, load_history, render_table
    from sla_stream.core.errors import SlaError
    from sla_stream.importers.servicenow import ImportFileError

    started = time.monotonic()
    try:
        report = evaluate(load_history(log, mapping, contracts))
    except (LabelError, ImportFileError, SlaError) as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    else:
        click.echo(render_table(report))
        click.echo(f"took {time.monotonic() - started:.0f} s")
