"""`sla-stream capacity`: staffing a target needs; `capacity backtest`: its measured error."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import orjson

from sla_stream.analytics.capacity_history import History, history_from_events
from sla_stream.analytics.capacity_roster import RosterError, load_roster
from sla_stream.core.models import IncidentEvent

DEFAULT_MAPPING = Path("examples/servicenow/mapping.yaml")
FORMATS = ("table", "csv", "json")


def load_history(log: Path | None, mapping: Path, events: Path | None, timezone: str) -> History:
    """A ServiceNow log through the importer, or an events.jsonl file."""
    if log is not None:
        from sla_stream.importers.servicenow import convert, open_log
        from sla_stream.importers.servicenow_mapping import load_mapping

        mapped = load_mapping(mapping)
        with open_log(log) as source:
            return history_from_events(convert(source, mapped), mapped.zone())
    if events is None:
        raise click.UsageError("give --log (a ServiceNow export) or --events (events.jsonl)")
    with events.open("rb") as lines:
        parsed = (IncidentEvent.model_validate_json(line) for line in lines if line.strip())
        return history_from_events(parsed, ZoneInfo(timezone))


def _source_options(command: Any) -> Any:
    options = [
        click.option("--log", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option(
            "--mapping",
            type=click.Path(dir_okay=False, path_type=Path),
            default=DEFAULT_MAPPING,
            show_default=True,
        ),
        click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--timezone", default="UTC", show_default=True, help="zone of --events"),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="table"),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path)),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


@click.group("capacity", invoke_without_command=True)
@_source_options
@click.option("--target", type=click.FloatRange(0, 1, min_open=True), default=0.95)
@click.option("--metric", type=click.Choice(["first_response"]), default="first_response")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--teams", "top", type=int, default=10, show_default=True, help="the N busiest")
@click.option("--team", "named", multiple=True, help="plan these teams (repeatable)")
@click.option("--arrivals", type=float, default=1.0, help="what-if: arrivals x k")
@click.option("--handle-time", type=float, default=1.0, help="what-if: handle time x k")
@click.option("--shrinkage", type=click.FloatRange(0, 1, max_open=True), default=0.0)
@click.option("--move-shift", multiple=True, help="TEAM=HOURS: move a team's staffing later")
@click.option("--merge", nargs=2, default=None, help="what-if: pool two teams")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    help="plan from the 30 days before this date (default: the last incident)",
)
@click.pass_context
def capacity(ctx: click.Context, **opts: Any) -> None:
    """Agents needed per team and hour of the week for a first-response target."""
    if ctx.invoked_subcommand is not None:
        return
    # The model's libraries (scikit-learn, scipy, pyworkforce) take seconds to import: only the
    # capacity commands load them, not every `sla-stream` command (the worker waited 4 s).
    import numpy as np

    from sla_stream.analytics import capacity_backtest
    from sla_stream.analytics.capacity_plan import WhatIf, plan

    history = load_history(opts["log"], opts["mapping"], opts["events"], opts["timezone"])
    roster = None
    if opts["roster"] is not None:
        try:
            roster = load_roster(opts["roster"]).by_team()
        except RosterError as exc:
            raise click.ClickException(str(exc)) from None
    until = (
        _midnight(opts["until"].date(), history.zone)
        if opts["until"]
        else history.incidents[-1].opened_at + timedelta(seconds=1)
    )
    # The band: how far the same model missed the last four weeks' team-week cells.
    check = capacity_backtest.Protocol(cut=until - timedelta(days=28), end=until)
    backtest = capacity_backtest.run(history, check)
    # The recommendations come from the staffing model: its own misses make the band.
    residuals = [c["actual"] - c["staffing_model"] for c in backtest["group_week"]["cells"]]
    band = tuple(np.percentile(residuals, [10, 90])) if residuals else (0.0, 0.0)
    fitted = capacity_backtest.fit(history, capacity_backtest.Protocol(cut=until, end=until))
    teams = list(opts["named"]) or [
        t for t, _ in Counter(r.team for r in fitted.train).most_common(opts["top"])
    ]
    shifts = {}
    for text in opts["move_shift"]:
        team, _, hours = text.rpartition("=")
        shifts[team] = int(hours)
    what_if = WhatIf(
        opts["arrivals"], opts["handle_time"], opts["shrinkage"], shifts, opts["merge"]
    )
    result = plan(fitted, opts["target"], teams=teams, roster=roster, what_if=what_if, band=band)
    result["metric"] = opts["metric"]
    result["backtest"] = {
        "group_week_mae": backtest["group_week"]["staffing_model_mae"],
        "hour_of_week_mae": backtest["hour_of_week"]["staffing_model_mae"],
        "band_points": [round(float(b), 2) for b in band],
        "cut": check.cut.isoformat(),
    }
    _emit(render_plan(result, opts["fmt"]), opts["out"])


PLAN_COLUMNS = (
    "team", "hour_of_week", "arrivals_per_week", "current", "needed",
    "predicted", "marginal", "low", "high",
)  # fmt: skip


def render_plan(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return (
            orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
            + "\n"
        )
    rows = [{"team": t["team"], **c} for t in result["teams"] for c in t["cells"]]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, PLAN_COLUMNS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    bt = result["backtest"]
    lines = [
        f"target {100 * result['target']:.0f} % {result['metric']}; backtest MAE "
        f"{bt['group_week_mae']:.1f} pts (team-week), band {bt['band_points'][0]:+.1f}/"
        f"{bt['band_points'][1]:+.1f} pts",
        f"{'team':<14}{'how':>5}{'arr/wk':>8}{'now':>6}{'need':>6}{'pred %':>8}{'+1':>7}  band %",
    ]
    for row in rows:
        if row["needed"] is not None and row["needed"] <= row["current"]:
            continue  # the table lists the cells short of the target; csv/json list all
        need = "-" if row["needed"] is None else str(row["needed"])
        lines.append(
            f"{row['team'][:13]:<14}{row['hour_of_week']:>5}{row['arrivals_per_week']:>8.1f}"
            f"{row['current']:>6.1f}{need:>6}{100 * row['predicted']:>8.1f}"
            f"{100 * row['marginal']:>+7.1f}  {100 * row['low']:.0f}-{100 * row['high']:.0f}"
        )
    for c in result["contracts_at_risk"]:
        teams = ", ".join(f"{t['team']} {100 * t['share']:.0f} %" for t in c["teams_under_target"])
        lines.append(f"at risk: {c['contract']} {100 * c['predicted']:.1f} % ({teams})")
    return "\n".join(lines) + "\n"


@capacity.command("backtest")
@_source_options
@click.option("--cut", type=click.DateTime(["%Y-%m-%d"]), default="2016-05-01", show_default=True)
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default="2016-06-01", show_default=True)
@click.option(
    "--fit-days",
    type=float,
    default=None,
    help="fit window in days (default: chosen on the 16 days before --cut, among 30 and 45)",
)
def backtest_command(cut: datetime, end: datetime, fit_days: float | None, **opts: Any) -> None:
    """Fit before --cut, predict first-response adherence per cell up to --end, beside baselines."""
    from sla_stream.analytics import capacity_backtest

    history = load_history(opts["log"], opts["mapping"], opts["events"], opts["timezone"])
    zone = history.zone
    protocol = capacity_backtest.Protocol(
        cut=_midnight(cut.date(), zone), end=_midnight(end.date(), zone), fit_days=fit_days or 30.0
    )
    try:
        selection = None
        if fit_days is None:
            protocol, selection = capacity_backtest.select_fit_days(history, protocol)
        result = capacity_backtest.run(history, protocol)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if selection is not None:
        result["protocol"]["selection"] = selection
    _emit(render_backtest(result, opts["fmt"]), opts["out"])


def render_backtest(result: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return (
            orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode()
            + "\n"
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["cells", "cell", "n", "actual", "predicted", "last_week", "erlang_c"])
        for level in ("group_week", "hour_of_week"):
            for c in result[level]["cells"]:
                name = " ".join(str(v) for v in c["cell"].values())
                writer.writerow([level, name, c["n"], c["actual"], c["predicted"],
                                 c["last_week"], c["erlang_c"]])  # fmt: skip
        return buffer.getvalue()
    p = result["protocol"]
    lines = [
        f"fit {p['fit_from'][:10]}..{p['cut'][:10]} ({p['train_incidents']} incidents), "
        f"scored {p['cut'][:10]}..{p['end'][:10]} ({p['test_incidents']} incidents)",
        f"{'cells':<14}{'n':>5}{'model MAE':>11}{'staffing':>10}{'last week':>11}"
        f"{'Erlang C':>10}{'floor':>8}",
    ]
    for level in ("group_week", "hour_of_week"):
        r = result[level]
        lines.append(
            f"{level:<14}{len(r['cells']):>5}{r['mae']:>11.2f}{r['staffing_model_mae']:>10.2f}"
            f"{r['last_week_mae']:>11.2f}{r['erlang_c_mae']:>10.2f}"
            f"{r['noise_floor']['binomial']:>8.2f}"
        )
    inc = result["incidents"]
    lines.append(
        f"per incident (base rate {inc['base_rate']:.2f}): AUC {inc['model']['auc']:.3f}, "
        f"log loss {inc['model']['log_loss']:.3f}; staffing model AUC "
        f"{inc['staffing_model']['auc']:.3f}, log loss {inc['staffing_model']['log_loss']:.3f}"
    )
    return "\n".join(lines) + "\n"
