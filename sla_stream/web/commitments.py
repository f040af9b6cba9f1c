"""A contract's targets in plain terms ("P1 first response within 15 minutes, 24x7"), with clauses.

What the portal shows a client and the dashboard's drill-down shows an account manager: the
versions of a contract that are in force at an instant or start later (an amendment already
signed), each target as one sentence, and the clauses the targets come from (id, title, text).
Pure: the instant is an argument.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sla_stream.core.calendar_spec import DAY_SECONDS, WEEKDAYS, parse_block
from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.terms import ContractRecord, ContractTerms, ServiceCredit, ServiceLevel, Target

METRIC_WORDS = {"first_response": "first response", "resolution": "resolution", "update": "update"}
_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def duration_words(seconds: float) -> str:
    """600 -> '10 minutes', 5400 -> '1 hour 30 minutes', 144000 -> '40 hours' (no days:
    business time is counted in hours, and a business day is not 24 of them)."""
    left = round(seconds)
    if left <= 0:
        return "0 seconds"
    parts = []
    for unit, size in _UNITS[1:]:
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts)


def short_duration(seconds: float) -> str:
    """Compact, for tables and charts: '45s', '12m', '3h 20m', '2d 4h'; negatives keep a sign."""
    sign, left = ("-" if seconds < 0 else ""), abs(round(seconds))
    if left < 60:
        return f"{sign}{left}s"
    if left < 3_600:
        return f"{sign}{left // 60}m"
    if left < 86_400:
        h, m = divmod(left // 60, 60)
        return f"{sign}{h}h {m}m" if m else f"{sign}{h}h"
    d, h = divmod(left // 3_600, 24)
    return f"{sign}{d}d {h}h" if h else f"{sign}{d}d"


def _clock(seconds: int) -> str:
    return "24:00" if seconds == DAY_SECONDS else f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


def calendar_words(block: Any) -> str:
    """'24x7', or 'Mon-Thu 08:00-18:00, Fri 08:00-17:00 (Europe/Berlin), except public
    holidays (DE-BE) and 2026-12-24, 2026-12-31'."""
    spec = parse_block(block)
    if spec.always_open and not spec.holidays and spec.country is None:
        return "24x7"
    groups: list[tuple[list[str], str]] = []  # runs of consecutive weekdays with equal hours
    for day, ranges in zip(WEEKDAYS, spec.week, strict=True):
        hours = ", ".join(f"{_clock(a)}-{_clock(b)}" for a, b in ranges)
        if groups and groups[-1][1] == hours and hours:
            groups[-1][0].append(day)
        else:
            groups.append(([day], hours))
    shown = [
        (f"{days[0].title()}-{days[-1].title()}" if len(days) > 1 else days[0].title())
        + f" {hours}"
        for days, hours in groups
        if hours
    ]
    text = f"{', '.join(shown)} ({spec.timezone.key})"
    excepts = []
    if spec.country:
        region = f"{spec.country}-{spec.subdiv}" if spec.subdiv else spec.country
        excepts.append(f"public holidays ({region})")
    if spec.holidays:
        excepts.append(", ".join(d.isoformat() for d in sorted(spec.holidays)))
    return text + (f", except {' and '.join(excepts)}" if excepts else "")


def target_words(target: Target, terms: ContractTerms) -> str:
    """One target as a client reads it: 'P1 first response within 15 minutes, 24x7', or for
    update cycles 'P1 update every 1 hour, 24x7'."""
    calendar = calendar_words(terms.calendar_block(target.calendar))
    every = "every" if target.metric == "update" else "within"
    text = (
        f"{target.severity} {METRIC_WORDS[target.metric]} {every} "
        f"{duration_words(target.allowance_s)}, {calendar}"
    )
    if target.pauses and terms.pause_statuses:
        text += f"; paused while {', '.join(terms.pause_statuses)}"
    return text


def level_words(level: ServiceLevel) -> str:
    """'95 % of P1/P2 first responses within target each month'."""
    which = "/".join(level.severities) + " " if level.severities else ""
    return (
        f"{level.objective_percent:g} % of {which}{METRIC_WORDS[level.metric]}s within target "
        f"each {level.period}"
    )


def credit_words(credit: ServiceCredit, currency: str | None) -> str:
    """'10 % of the period's fee (1,000.00 EUR a month) per missed service level, at most 15 %'."""
    if credit.percent_per_miss is not None:
        rule = f"{credit.percent_per_miss:g} % of the period's fee per missed service level"
    else:
        rule = "of the period's fee, by service levels missed in it: " + ", ".join(
            f"{s.percent:g} % from {s.misses}" for s in credit.steps
        )
    fee = f"{credit.monthly_fee:,.2f}{' ' + currency if currency else ''} a month"
    cap = f", at most {credit.cap_percent:g} %" if credit.cap_percent is not None else ""
    return f"{rule} (fee {fee}){cap}"


def _order(target: Target) -> tuple[int, int]:
    return (SEVERITIES.index(target.severity), METRICS.index(target.metric))


def terms_json(terms: ContractTerms, at: datetime) -> dict[str, Any]:
    """One contract version's commitments: plain-terms targets and the clauses they cite."""
    targets = sorted(terms.targets, key=_order)
    credit = terms.service_credit
    cited = list(
        dict.fromkeys(
            [t.clause_id for t in targets]
            + [lv.clause_id for lv in terms.service_levels]
            + ([credit.clause_id] if credit else [])
        )
    )
    return {
        "contract_id": terms.contract_id,
        "version": terms.version,
        "in_force": terms.in_force_at(at),
        "effective_from": terms.effective_from.isoformat() if terms.effective_from else None,
        "effective_to": terms.effective_to.isoformat() if terms.effective_to else None,
        "tier": terms.tier,
        "timezone": terms.timezone,
        "pause_statuses": list(terms.pause_statuses),
        "targets": [
            {
                "metric": t.metric,
                "severity": t.severity,
                "allowance_s": t.allowance_s,
                "calendar": t.calendar,
                "calendar_terms": calendar_words(terms.calendar_block(t.calendar)),
                "pauses": t.pauses,
                "clause_id": t.clause_id,
                "clause_title": t.clause_title,
                "plain": target_words(t, terms),
            }
            for t in targets
        ],
        **service_levels_json(terms),
        "clauses": [
            {
                "id": cid,
                "title": terms.clauses.get(cid, {}).get("title", ""),
                "text": terms.clauses.get(cid, {}).get("text", ""),
            }
            for cid in cited
        ],
    }


def service_levels_json(terms: ContractTerms) -> dict[str, Any]:
    """A version's service levels and its credit clause, each with its plain words."""
    credit = terms.service_credit
    return {
        "service_levels": [
            {
                "id": lv.id,
                "metric": lv.metric,
                "severities": list(lv.severities),
                "objective_percent": lv.objective_percent,
                "period": lv.period,
                "clause_id": lv.clause_id,
                "clause_title": lv.clause_title,
                "plain": level_words(lv),
            }
            for lv in terms.service_levels
        ],
        "service_credit": None
        if credit is None
        else {
            "clause_id": credit.clause_id,
            "clause_title": credit.clause_title,
            "percent_per_miss": credit.percent_per_miss,
            "steps": [{"misses": s.misses, "percent": s.percent} for s in credit.steps],
            "cap_percent": credit.cap_percent,
            "monthly_fee": credit.monthly_fee,
            "currency": terms.currency,
            "plain": credit_words(credit, terms.currency),
        },
    }


def current_and_upcoming(record: ContractRecord, at: datetime) -> list[ContractTerms]:
    """The version in force at `at` (the highest, as incidents opened then pin it) and every
    version that starts later, oldest start first; expired and superseded versions are left out."""
    current = record.for_incident_opened_at(at)
    later = [v for v in record.versions if v.effective_from is not None and v.effective_from > at]
    later.sort(key=lambda v: (v.effective_from, v.version))
    return ([current] if current is not None else []) + later


def commitments_json(record: ContractRecord, at: datetime) -> dict[str, Any]:
    """A contract's commitments at `at`: its current version and any signed for later."""
    versions = current_and_upcoming(record, at)
    return {
        "contract_id": record.contract_id,
        "customer_id": versions[0].customer_id if versions else record.versions[-1].customer_id,
        "versions": [terms_json(v, at) for v in versions],
    }
