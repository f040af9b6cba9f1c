"""Explain an incident of a replay: what the run was (`replay.json` in its directory), and the
incident's engine state re-derived from its events in that run's events file.

`sla-stream replay` writes `replay.json` beside `alerts.jsonl` and `outcomes.jsonl`: the
contracts and events files it read (absolute paths) and the instant it ran to (`until`), which
is the "now" an explanation of that run is read at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from sla_stream.core import engine
from sla_stream.core.engine import IncidentState
from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import decode_event
from sla_stream.core.terms import ContractRecord

MANIFEST = "replay.json"


@dataclass(frozen=True)
class ReplayRun:
    """What a replay directory says of its run; `events` is None when they came on stdin."""

    contracts: Path
    events: Path | None
    until: datetime | None

    def write(self, out_dir: Path) -> None:
        body = {
            "contracts": str(self.contracts.resolve()),
            "events": str(self.events.resolve()) if self.events else None,
            "until": self.until.isoformat() if self.until else None,
        }
        (out_dir / MANIFEST).write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))

    @classmethod
    def read(cls, out_dir: Path) -> ReplayRun:
        """Raise FileNotFoundError (no manifest: not a replay directory, or an older one)."""
        body = orjson.loads((out_dir / MANIFEST).read_bytes())
        until = body.get("until")
        return cls(
            Path(body["contracts"]),
            Path(body["events"]) if body.get("events") else None,
            datetime.fromisoformat(until) if until else None,
        )


def incident_state(
    events_path: Path,
    incident_id: str,
    contracts: dict[str, ContractRecord],
    until: datetime | None = None,
) -> IncidentState | None:
    """The incident's state after its events in file order (those after `until` left out, as
    the replay left them out); None when the file has none. Invalid lines are skipped, as the
    replay skipped them."""
    # Only lines that may name the incident are decoded: as written, or as JSON escapes it.
    needles = {incident_id.encode(), json.dumps(incident_id)[1:-1].encode()}
    state: IncidentState | None = None
    with events_path.open("rb") as lines:
        for line in lines:
            if not any(n in line for n in needles):
                continue
            try:
                event = decode_event(line)
            except InvalidEvent:
                continue
            if event.incident_id != incident_id:
                continue
            if until is not None and event.occurred_at > until:
                continue
            contract_id = state.contract_id if state is not None else None
            contract_id = contract_id or event.contract_id
            record = contracts.get(contract_id) if contract_id else None
            state = engine.apply(state, event, record).state
    return state
