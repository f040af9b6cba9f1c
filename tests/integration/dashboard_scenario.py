"""A scripted stream for the dashboard and portal tests, with its hand-computed figures.

Two contracts on 24x7 calendars: `acme` (customer acme-corp, tier gold, zone Europe/Berlin) and
`globex` (customer globex, tier silver, zone UTC). Allowances:

| contract | FR P1 | FR P2 | FR P3 | FR P4 | RES P1 | RES P2 | RES P3 | RES P4 |
|---|---|---|---|---|---|---|---|---|
| acme | 10m | 30m | 4h | 8h | 1h | 2h | 24h | 40h |
| globex | 15m | 1h | 4h | 8h | 2h | 4h | 24h | 40h |

Settled clocks (fixed 2026 dates, before any date the tests run on, so that the clocks that
settle while a test runs fall outside the range the tests read):

| inc | contract | opened (UTC) | sev cat | first response | resolution |
|---|---|---|---|---|---|
| A1 | acme | 05-10 10:00 | P1 network | 10:05 met 300 s, Q2 | 10:40 met 2400 s, Q2 |
| A2 | acme | 06-15 08:00 | P1 network | breach 08:10 (1200 s), Q2 | 08:50 met 3000 s, Q2 |
| A3 | acme | 07-05 09:00 | P2 database | 09:10 met 600 s, Q3 | breach 11:00 (10800 s), Q3 |
| A4 | acme | 08-02 14:00 | P1 network | 14:02 met 120 s, Q3 | 14:30 met 1800 s, Q3 |
| G1 | globex | 07-20 06:00 | P1 app | breach 06:15 (1800 s), Q3 | breach 08:00 (10800 s), Q3 |
| G2 | globex | 08-10 12:00 | P2 app | 12:20 met 1200 s, Q3 | 13:00 met 3600 s, Q3 |

Acme's service level, 90 % of P1/P2 first responses within target each month (Europe/Berlin),
by month: April 0/0, May 1/1, June 0/1 (A2) missed, July 1/1, August 1/1, September 0/0. Its
credit, 5 % of the month's fee (the value 120000 EUR a year: 10000 a month) per missed level:
June 500.00 EUR, so 2026-Q2 500.00 EUR and 2026-Q3 0.00 EUR. The drill-down's target line for
first response is acme's 90 %; resolution (no service level) keeps the default 95 %.

By quarter (2026-Q2, 2026-Q3), all contracts: first response 1/2, 3/4 (total 4/6);
resolution 2/2, 2/4 (total 4/6). Breaches: acme Q2 1, Q3 1; globex Q2 0, Q3 2.
P1 only: first response 1/2, 1/2; resolution 2/2, 1/2. Tier silver (globex): 1/2 and 1/2.

Open incidents, opened relative to the moment the stream is sent (`now`):

| inc | contract | opened | sev | first response due | resolution due |
|---|---|---|---|---|---|
| OVERDUE | acme | now - 45m | P2 | now - 15m (breached) | now + 1h15m |
| SOON | acme | now - 2h | P3 | now + 2h | now + 22h |
| LATER | globex | now - 30m | P4 | now + 7h30m | now + 39h30m |
| WAITING-n | globex | now - 10m | P4 | now + 7h50m | paused, 40h |

The WAITING incidents (one per partition, so that every worker owns open incidents) wait on the
customer from the start: their resolution clocks are paused with all 40 hours left.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

CONTRACTS_YAML = """
tiers:
  gold:
    calendar: "24x7"
    targets:
      first_response: {P1: 10m, P2: 30m, P3: 4h, P4: 8h}
      resolution: {P1: 1h, P2: 2h, P3: 24h, P4: 40h}
  silver:
    calendar: "24x7"
    targets:
      first_response: {P1: 15m, P2: 1h, P3: 4h, P4: 8h}
      resolution: {P1: 2h, P2: 4h, P3: 24h, P4: 40h}
contracts:
  - contract_id: acme
    customer_id: acme-corp
    tier: gold
    timezone: Europe/Berlin
    value: 120000
    currency: EUR
    clauses:
      - {id: "4.1", title: Response, text: Acme is answered within Table 1., covers: [{metric: first_response}]}
      - {id: "4.2", title: Restoration, text: Acme is restored within Table 1., covers: [{metric: resolution}]}
      - {id: "4.3", title: Monthly service level, text: 90 % of P1 and P2 responses in time each month.}
      - {id: "4.4", title: Service credit, text: 5 % of the month's fee per missed service level.}
    service_levels:
      - {id: urgent-response, metric: first_response, severity: [P1, P2], objective: 90%, clause: "4.3"}
    service_credit: {clause: "4.4", percent_per_miss: 5, cap: 20}
  - contract_id: globex
    customer_id: globex
    tier: silver
    timezone: UTC
    pause_statuses: [pending_customer]
    clauses:
      - {id: "G-1", title: Globex response, text: Globex is answered promptly., covers: [{metric: first_response}]}
      - {id: "G-2", title: Globex fix, text: Globex is fixed in time., covers: [{metric: resolution}]}
"""  # noqa: E501

RANGE = {"from": "2026-Q2", "to": "2026-Q4", "step": "quarter"}
QUARTERS = ["2026-Q2", "2026-Q3"]
# metric -> [(period, numerator, denominator)]
EXPECTED = {
    "first_response": [("2026-Q2", 1, 2), ("2026-Q3", 3, 4)],
    "resolution": [("2026-Q2", 2, 2), ("2026-Q3", 2, 4)],
    "update": [("2026-Q2", 0, 0), ("2026-Q3", 0, 0)],  # no contract here keeps update cycles
}
EXPECTED_TOTALS = {"first_response": (4, 6), "resolution": (4, 6)}
EXPECTED_P1 = {
    "first_response": [("2026-Q2", 1, 2), ("2026-Q3", 1, 2)],
    "resolution": [("2026-Q2", 2, 2), ("2026-Q3", 1, 2)],
}
EXPECTED_BREACHES = {"acme": [1, 1], "globex": [0, 2]}
# acme's service level per month: (month, numerator, denominator, status)
EXPECTED_LEVEL = [
    ("2026-04", 0, 0, "met"),
    ("2026-05", 1, 1, "met"),
    ("2026-06", 0, 1, "missed"),
    ("2026-07", 1, 1, "met"),
    ("2026-08", 1, 1, "met"),
    ("2026-09", 0, 0, "met"),
]
EXPECTED_CREDITS = {"2026-Q2": 500.0, "2026-Q3": 0.0}
# (metric, category, quarter) -> settled clocks
EXPECTED_TREND_COUNTS = {
    ("first_response", "network", "2026-Q2"): 2,
    ("first_response", "network", "2026-Q3"): 1,
    ("first_response", "database", "2026-Q3"): 1,
    ("first_response", "app", "2026-Q3"): 2,
}
PARTITIONS = 4


def ev(incident: str, n: str, type_: str, at: str | datetime, **extra: Any) -> dict[str, Any]:
    when = at if isinstance(at, str) else at.isoformat()
    return {
        "event_id": f"{incident}-{n}",
        "incident_id": incident,
        "type": type_,
        "occurred_at": when,
        **extra,
    }


def opened(
    incident: str, at: str | datetime, contract: str, severity: str, category: str
) -> dict[str, Any]:
    return ev(
        incident, "o", "opened", at, contract_id=contract, severity=severity, category=category
    )


def _day(d: str, hm: str) -> str:
    return f"2026-{d}T{hm}:00Z"


def settled() -> list[dict[str, Any]]:
    return [
        opened("A1", _day("05-10", "10:00"), "acme", "P1", "network"),
        ev("A1", "r", "responded", _day("05-10", "10:05")),
        ev("A1", "s", "resolved", _day("05-10", "10:40")),
        opened("A2", _day("06-15", "08:00"), "acme", "P1", "network"),
        ev("A2", "r", "responded", _day("06-15", "08:20")),
        ev("A2", "s", "resolved", _day("06-15", "08:50")),
        opened("A3", _day("07-05", "09:00"), "acme", "P2", "database"),
        ev("A3", "r", "responded", _day("07-05", "09:10")),
        ev("A3", "s", "resolved", _day("07-05", "12:00")),
        opened("A4", _day("08-02", "14:00"), "acme", "P1", "network"),
        ev("A4", "r", "responded", _day("08-02", "14:02")),
        ev("A4", "s", "resolved", _day("08-02", "14:30")),
        opened("G1", _day("07-20", "06:00"), "globex", "P1", "app"),
        ev("G1", "r", "responded", _day("07-20", "06:30")),
        ev("G1", "s", "resolved", _day("07-20", "09:00")),
        opened("G2", _day("08-10", "12:00"), "globex", "P2", "app"),
        ev("G2", "r", "responded", _day("08-10", "12:20")),
        ev("G2", "s", "resolved", _day("08-10", "13:00")),
    ]


def waiting_ids(partitions: int = PARTITIONS) -> list[str]:
    """One incident id per partition, by the producer's default (murmur2) partitioner."""
    partitioner = DefaultPartitioner()
    ids: dict[int, str] = {}
    n = 0
    while len(ids) < partitions:
        candidate = f"WAITING-{n}"
        p = partitioner(candidate.encode(), list(range(partitions)), list(range(partitions)))
        ids.setdefault(p, candidate)
        n += 1
    return [ids[p] for p in sorted(ids)]


def open_now(now: datetime) -> list[dict[str, Any]]:
    events = [
        opened("OVERDUE", now - timedelta(minutes=45), "acme", "P2", "network"),
        opened("SOON", now - timedelta(hours=2), "acme", "P3", "database"),
        opened("LATER", now - timedelta(minutes=30), "globex", "P4", "app"),
    ]
    for incident in waiting_ids():
        at = now - timedelta(minutes=10)
        events += [
            opened(incident, at, "globex", "P4", "app"),
            ev(incident, "p", "status_changed", at, status="pending_customer"),
        ]
    return events


def stream(now: datetime) -> list[dict[str, Any]]:
    return settled() + open_now(now)


# (incident, metric) of the at-risk rows, in order (ties of equal deadlines by incident id).
def expected_at_risk() -> list[tuple[str, str]]:
    return [
        ("OVERDUE", "first_response"),
        ("OVERDUE", "resolution"),
        ("SOON", "first_response"),
        ("LATER", "first_response"),
        *[(w, "first_response") for w in sorted(waiting_ids())],
        ("SOON", "resolution"),
        ("LATER", "resolution"),
        *[(w, "resolution") for w in sorted(waiting_ids())],
    ]
