"""Replay and engine throughput: `sla-stream replay` over a generated 200k-event stream (parse,
validate, engine, write), the engine alone on pre-parsed events, and the real ServiceNow log."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench.profile import Profiler, functions_under
from sla_stream.core.contracts import load_contracts
from sla_stream.core.engine import IncidentState
from sla_stream.core.models import IncidentEvent
from sla_stream.generate import iter_events
from sla_stream.importers.servicenow_data import SERVICENOW_LOG
from sla_stream.replay import Replayer, read_events, replay_events, replay_file

TITLE = "Replay and engine throughput"

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "examples" / "contracts.yaml"
INCIDENTS = 46_300  # about 200,000 events with the default profile
SEED = 1
SERVICENOW = ROOT / "examples" / "servicenow"
PROFILED = 100_000  # events of the stream replayed again under py-spy, after the timed runs


class Took(NamedTuple):
    wall_s: float
    cpu_s: float  # this process only: other load on the machine does not count

    def row(self, label: str, events: int) -> str:
        return (
            f"| {label} | {self.wall_s:.1f} | {events / self.wall_s:,.0f} | "
            f"**{events / self.cpu_s:,.0f}** |\n"
        )


def _timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, Took(time.perf_counter() - wall, time.process_time() - cpu)


def _generate(path: Path) -> int:
    contracts = load_contracts(CONTRACTS)
    count = 0
    with path.open("wb") as out:
        for event in iter_events(INCIDENTS, SEED, contracts=contracts):
            out.write(event.to_json() + b"\n")
            count += 1
    return count


def _parse(path: Path) -> list[IncidentEvent]:
    replayer = Replayer({}, lambda a: None, lambda o: None)
    with path.open("rb") as source:
        return list(read_events(source, replayer.summary))


def _state_sizes(events: list[IncidentEvent]) -> tuple[list[int], float]:
    """Bytes of each incident's final state, and microseconds of one to_bytes + from_bytes."""
    contracts = load_contracts(CONTRACTS)
    replayer = Replayer(contracts, lambda a: None, lambda o: None)
    for event in events[:50_000]:
        replayer.event(event)
    replayer.finish()
    states = list(replayer.states.values())
    sizes = [len(s.to_bytes()) for s in states]
    started = time.process_time()
    for s in states:
        IncidentState.from_bytes(s.to_bytes())
    return sizes, (time.process_time() - started) / len(states) * 1e6


def _engine_profile(events: list[IncidentEvent], contracts: dict, tmp: Path) -> str:
    """The engine alone again on the stream's first events, this process sampled by py-spy."""
    profiler = Profiler(tmp / "engine.pyspy")
    profiler.attach(os.getpid())
    time.sleep(1.0)  # py-spy needs a moment before its first sample
    replay_events(events[:PROFILED], contracts)
    profiler.stop()
    root = ("replay_events", "sla_stream/replay.py")
    parts = {
        "settle": profiler.share_in("core/fold.py", root),
        "models": profiler.share_in("core/models.py", root),
        "clock": profiler.share_in("core/clock.py", root),
        "calendar": profiler.share_in("core/calendar", root),
        "fire": profiler.share_in("_fire_before", root),
        "levels": profiler.share_in("analytics/service_levels.py", root),
    }
    return (
        functions_under(profiler, root)
        + "\n\n"
        + WHERE.format(**{k: f"{v:.0%}" for k, v in parts.items()})
    )


WHERE = (
    "Why the engine stays far from the goals (engine alone >= 0.7x the parse rate, the replay "
    "path >= 0.4x), from the profile above (inclusive shares; a sample may count in several): "
    "settling each step's effects against the incident's ledger (`core/fold.py`) {settle}; "
    "building the alert and outcome models a step produces (`core/models.py`) {models}; the "
    "clock rules (`core/clock.py`) {clock} and calendar arithmetic (`core/calendar*.py`) "
    "{calendar}; firing dues, each warning or breach a resume-and-settle step of its own "
    "(`Replayer._fire_before`) {fire}; the replay's service-level tracking {levels}. The time is "
    "spread thin: no part is near the 5x the goal needs, and the leaf functions above are "
    "ordinary Python (tuple and dict work, small functions called per rule per step). What is "
    "left is the interpreter's cost per rule: the next lever is a compiled core (mypyc on "
    "`sla_stream/core/`, which would have to build from `make test` on a bare machine), then "
    "fewer settle passes per step (all of an instant's dues fired in one)."
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _servicenow(tmp: Path) -> str:
    events = tmp / "servicenow.jsonl"
    cli = [sys.executable, "-m", "sla_stream.cli"]
    before = _children_cpu()
    imported = subprocess.run(
        [*cli, "import", "servicenow", str(SERVICENOW_LOG), "--mapping",
         str(SERVICENOW / "mapping.yaml"), "--out", str(events), "--report", str(tmp / "r.jsonl")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    import_cpu = _children_cpu() - before
    if imported.returncode != 0:
        return f"- real ServiceNow log: import failed ({imported.stderr.strip()[-200:]})\n"
    contracts = load_contracts(SERVICENOW / "contracts.yaml")
    summary, took = _timed(replay_file, contracts, events, tmp / "servicenow-out")
    return (
        f"- real ServiceNow log (24,918 incidents, imported by `sla-stream import servicenow`, "
        f"contracts `examples/servicenow/contracts.yaml`): {summary.events:,} events replayed "
        f"(parse + validate + engine + write) in {took.wall_s:.1f} s wall = "
        f"{summary.events / took.wall_s:,.0f} events/s; **{summary.events / took.cpu_s:,.0f} "
        f"events/s** of CPU; {sum(summary.alerts.values()):,} alerts, "
        f"{summary.outcome_records:,} outcome records. The import (`sla-stream import "
        f"servicenow`, its own process, start-up included) took {import_cpu:.1f} s of CPU: "
        f"import + replay **{import_cpu + took.cpu_s:.1f} s of CPU** (goal under 5 s).\n"
    )


def run() -> str:
    contracts = load_contracts(CONTRACTS)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "events.jsonl"
        count, gen_took = _timed(_generate, path)
        size_mb = path.stat().st_size / 1e6
        summary, replay_took = _timed(replay_file, contracts, path, tmp / "out")
        events, parse_took = _timed(_parse, path)
        (_, _, engine_summary), engine_took = _timed(replay_events, events, contracts)
        sizes, codec_us = _state_sizes(events)
        real = _servicenow(tmp)
        profile = _engine_profile(events, contracts, tmp)
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(summary.alerts.items()))
    rates = "; ".join(
        f"{m} {100 * a / b:.1f} % ({a:,}/{b:,})" for m, (a, b) in summary.adherence.items() if b
    )
    sizes.sort()
    parse_rate = count / parse_took.cpu_s
    engine_ratio = engine_summary.events / engine_took.cpu_s / parse_rate
    replay_ratio = count / replay_took.cpu_s / parse_rate
    return (
        f"Stream: `sla-stream generate --incidents {INCIDENTS} --seed {SEED}` on "
        f"`examples/contracts.yaml`: {count:,} events ({size_mb:.0f} MB), "
        f"{summary.incidents:,} incidents; {sum(summary.alerts.values()):,} alerts ({kinds}); "
        f"{summary.outcome_records:,} outcome records ({summary.withdrawals:,} withdrawals); "
        f"adherence {rates}. One run each; events/s by wall clock and by this process's CPU "
        f"time (the CPU figure is what the code costs when other work shares the machine; the "
        f"load average was {load:.1f} on {os.cpu_count()} cores when this section started).\n\n"
        f"| step | wall s | events/s (wall) | events/s (CPU) |\n|---|---:|---:|---:|\n"
        + gen_took.row("generate (to a file)", count)
        + replay_took.row("`sla-stream replay` path: parse + validate + engine + write", count)
        + parse_took.row("parse + validate only (`IncidentEvent.model_validate_json`)", count)
        + engine_took.row(
            "engine alone on pre-parsed events (apply + due heap + advance)", engine_summary.events
        )
        + "\n"
        f"By CPU, the engine alone runs at **{engine_ratio:.2f}x** the parse-and-validate rate "
        f"(goal 0.7) and the replay path at **{replay_ratio:.2f}x** (goal 0.4).\n\n"
        f"Incident state (`IncidentState.to_bytes`, what the worker writes per event), final "
        f"states of the first 50,000 events: median {statistics.median(sizes):,.0f} B, "
        f"p95 {sizes[int(len(sizes) * 0.95)]:,} B, max {sizes[-1]:,} B; to_bytes + from_bytes "
        f"{codec_us:.0f} µs of CPU per state.\n\n{real}\n"
        f"Where the engine's time goes: its first {PROFILED:,} events replayed again (engine "
        f"alone, untimed) with py-spy attached.\n\n{profile}\n"
    )
