"""Contracts files resolved into `ContractRecord`s: tiers, rules, overrides, calendars, clauses.

Resolution of one target (a metric at a severity), most specific first:

- allowance, thresholds, `pauses`: the contract's `overrides`, then the tier's target, then the
  tier's `warning_thresholds`, then the defaults (0.5, 0.75, 0.9; `resolution` and `update`
  pause on the contract's pause statuses, `first_response` does not).
- calendar: the override's, then the tier target's (a P1 is often `24x7`), then the contract's
  `calendar`, then the tier's `calendar`, then `24x7`.
- clause: a clause covering that metric at that severity, else one covering the metric at
  every severity. Every target needs exactly one.

Service levels (aggregate targets per month or quarter) and the service credit are resolved in
`service_level_terms.py`.

A clock that pauses stops accruing while the incident's status is one of the contract's
`pause_statuses` (default: `pending_customer`, `awaiting_customer`).

A contract's time zone (for periods) defaults to its calendar's; a date in `effective_from` or
`effective_to` means midnight in that zone. Several entries with one `contract_id` and
different `version`s are the versions of one contract.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import yaml

from sla_stream.core.calendar import BusinessCalendar
from sla_stream.core.contract_file import (
    ClauseSpec,
    ContractsFile,
    ContractSpec,
    CoverSpec,
    TargetSpec,
    TierRule,
    read_file_model,
)
from sla_stream.core.errors import InvalidContract
from sla_stream.core.models import METRICS, SEVERITIES
from sla_stream.core.service_level_terms import service_credit_of, service_levels_of
from sla_stream.core.terms import DEFAULT_WARNING_THRESHOLDS, ContractRecord, ContractTerms, Target

ALWAYS_OPEN = "24x7"
DEFAULT_PAUSE_STATUSES: tuple[str, ...] = ("pending_customer", "awaiting_customer")
PAUSING_BY_DEFAULT = frozenset({"resolution", "update"})


def load_contracts(path: Path) -> dict[str, ContractRecord]:
    """Read a YAML (`.yaml`, `.yml`) or JSON (`.json`) contracts file and resolve it."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidContract(f"cannot read the file: {exc}", file=file) from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.YAMLError as exc:
            raise InvalidContract(f"not valid YAML: {exc}", file=file) from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidContract(f"not valid JSON: {exc}", file=file) from None
    else:
        raise InvalidContract("expected a .yaml, .yml or .json file", file=file, value=suffix)
    return parse_contracts(data, file=file)


def parse_contracts(data: Mapping[str, Any], file: str = "") -> dict[str, ContractRecord]:
    """Validate and resolve a parsed contracts file; `file` only names it in errors."""
    spec = read_file_model(data, file)
    resolver = _Resolver(spec, file)
    by_id: dict[str, list[tuple[int, ContractTerms]]] = {}
    for index, contract in enumerate(spec.contracts):
        by_id.setdefault(contract.contract_id, []).append(
            (index, resolver.contract(index, contract))
        )
    return {cid: resolver.record(cid, versions) for cid, versions in by_id.items()}


def select_tier(rules: tuple[TierRule, ...], contract: ContractSpec) -> str | None:
    """The tier of the first rule whose every condition holds for the contract, if any."""
    for rule in rules:
        when = rule.when
        if when.customer_tier is not None and contract.customer_tier not in when.customer_tier:
            continue
        if when.currency is not None and contract.currency != when.currency:
            continue
        value = contract.value
        if when.min_value is not None and (value is None or value < when.min_value):
            continue
        if when.max_value is not None and (value is None or value >= when.max_value):
            continue
        return rule.tier
    return None


class _Loader(yaml.SafeLoader):
    """Safe YAML, except that `17:00` stays a clock time instead of YAML 1.1's integer 1020."""


def _int_or_clock(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and ":" in text:
        return text
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _date_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    """An unquoted date that is no date (2026-13-01) stays text, so validation can name it."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_clock)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _date_or_text)


@dataclass(frozen=True)
class _Calendar:
    block: dict[str, Any]
    timezone: str


class _Resolver:
    """Holds the validated file and its calendars; every refusal goes through `fail`."""

    def __init__(self, spec: ContractsFile, file: str) -> None:
        self.spec = spec
        self.file = file
        self.calendars = self._calendars()
        self._check_tiers()

    def fail(self, message: str, path: str, value: object = None) -> InvalidContract:
        return InvalidContract(message, path=path, value=value, file=self.file)

    def _calendars(self) -> dict[str, _Calendar]:
        out = {ALWAYS_OPEN: _calendar_of(ALWAYS_OPEN, ALWAYS_OPEN, self.file)}
        for name, raw in self.spec.calendars.items():
            out[name] = _calendar_of(name, raw, self.file)
        return out

    def _check_calendar(self, name: str | None, path: str) -> None:
        if name is not None and name not in self.calendars:
            known = ", ".join(sorted(self.calendars))
            raise self.fail(f"unknown calendar (known: {known})", path, name)

    def _check_tiers(self) -> None:
        for name, tier in self.spec.tiers.items():
            self._check_calendar(tier.calendar, f"tiers.{name}.calendar")
            for metric, row in tier.targets.items():
                for severity, target in row.items():
                    path = f"tiers.{name}.targets.{metric}.{severity}"
                    if target.allowance is None:
                        raise self.fail("a tier target needs an allowance", path)
                    self._check_calendar(target.calendar, f"{path}.calendar")
        for index, rule in enumerate(self.spec.tier_rules):
            self._check_tier(rule.tier, f"tier_rules[{index}].tier")

    def _check_tier(self, name: str, path: str) -> None:
        if name not in self.spec.tiers:
            known = ", ".join(sorted(self.spec.tiers)) or "none defined"
            raise self.fail(f"unknown tier (known: {known})", path, name)

    def contract(self, index: int, c: ContractSpec) -> ContractTerms:
        at = f"contracts[{index}]"
        tier_name = c.tier or select_tier(self.spec.tier_rules, c)
        if tier_name is None:
            raise self.fail(
                "names no tier and no tier rule matches it",
                at,
                {"customer_tier": c.customer_tier, "value": c.value, "currency": c.currency},
            )
        self._check_tier(tier_name, f"{at}.tier")
        tier = self.spec.tiers[tier_name]
        if c.value is not None and c.currency is None:
            raise self.fail("a value needs a currency (ISO 4217, like EUR)", f"{at}.currency")
        calendar = c.calendar or tier.calendar or ALWAYS_OPEN
        self._check_calendar(c.calendar, f"{at}.calendar")
        timezone = c.timezone or self.calendars[calendar].timezone
        zone = self._zone(timezone, f"{at}.timezone")
        start = _as_instant(c.effective_from, zone)
        end = _as_instant(c.effective_to, zone)
        if start is not None and end is not None and end <= start:
            raise self.fail(
                f"effective_to must be after effective_from ({start.isoformat()})",
                f"{at}.effective_to",
                end.isoformat(),
            )
        targets = self._targets(index, c, tier_name, calendar)
        used = sorted({t.calendar for t in targets})
        return ContractTerms(
            contract_id=c.contract_id,
            version=c.version,
            customer_id=c.customer_id,
            customer_tier=c.customer_tier,
            tier=tier_name,
            value=c.value,
            currency=c.currency,
            timezone=timezone,
            effective_from=start,
            effective_to=end,
            pause_statuses=DEFAULT_PAUSE_STATUSES if c.pause_statuses is None else c.pause_statuses,
            at_risk_level=c.at_risk_level,
            calendars={name: self.calendars[name].block for name in used},
            targets=targets,
            clauses={k.id: {"title": k.title, "text": k.text} for k in c.clauses},
            service_levels=service_levels_of(tier, tier_name, c, index, targets, self.fail),
            service_credit=service_credit_of(tier, tier_name, c, index, self.fail),
        )

    def _zone(self, name: str, path: str) -> ZoneInfo:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail("unknown time zone", path, name) from None

    def _targets(
        self, index: int, c: ContractSpec, tier_name: str, calendar: str
    ) -> tuple[Target, ...]:
        tier = self.spec.tiers[tier_name]
        clauses = self._coverage(index, c, tier_name)
        out = []
        for metric in METRICS:
            for severity in SEVERITIES:
                base = tier.targets.get(metric, {}).get(severity)  # type: ignore[call-overload]
                over = c.overrides.get(metric, {}).get(severity)  # type: ignore[call-overload]
                if base is None and over is None:
                    continue
                path = f"contracts[{index}].overrides.{metric}.{severity}"
                merged = _merge(base, over)
                if merged.allowance is None:
                    raise self.fail(
                        f"tier {tier_name!r} has no {metric}/{severity} target, so this override "
                        "needs an allowance",
                        path,
                    )
                self._check_calendar(over.calendar if over else None, f"{path}.calendar")
                clause = clauses[(metric, severity)]
                out.append(
                    Target(
                        metric=metric,
                        severity=severity,
                        allowance_s=merged.allowance,
                        calendar=merged.calendar or calendar,
                        warning_thresholds=_first(
                            merged.warning_thresholds,
                            tier.warning_thresholds,
                            DEFAULT_WARNING_THRESHOLDS,
                        ),
                        clause_id=clause.id,
                        clause_title=clause.title,
                        pauses=_first(merged.pauses, metric in PAUSING_BY_DEFAULT),
                    )
                )
        return tuple(out)

    def _coverage(
        self, index: int, c: ContractSpec, tier_name: str
    ) -> dict[tuple[str, str], ClauseSpec]:
        """The clause of every target the contract has; refuses gaps, clashes and strays."""
        tier = self.spec.tiers[tier_name]
        keys = {
            (m, s) for table in (tier.targets, c.overrides) for m, row in table.items() for s in row
        }
        exact: dict[tuple[str, str], ClauseSpec] = {}
        wide: dict[tuple[str, str], ClauseSpec] = {}
        seen: set[str] = set()
        for j, clause in enumerate(c.clauses):
            at = f"contracts[{index}].clauses[{j}]"
            if clause.id in seen:
                raise self.fail("duplicate clause id", f"{at}.id", clause.id)
            seen.add(clause.id)
            for k, cover in enumerate(clause.covers):
                self._cover(
                    keys, exact if cover.severity else wide, clause, cover, f"{at}.covers[{k}]"
                )
        for metric in METRICS:
            for severity in SEVERITIES:
                key = (metric, severity)
                if key in keys and key not in exact and key not in wide:
                    raise self.fail(
                        "this target is covered by no clause",
                        f"contracts[{index}].clauses",
                        f"{metric}/{severity}",
                    )
        return {k: exact.get(k) or wide[k] for k in keys}

    def _cover(
        self,
        keys: set[tuple[str, str]],
        table: dict[tuple[str, str], ClauseSpec],
        clause: ClauseSpec,
        cover: CoverSpec,
        at: str,
    ) -> None:
        severities = cover.severity or SEVERITIES
        if cover.severity is None and not any(m == cover.metric for m, _ in keys):
            raise self.fail(
                "the contract has no target for this metric", f"{at}.metric", cover.metric
            )
        for severity in severities:
            key = (cover.metric, severity)
            if cover.severity is not None and key not in keys:
                raise self.fail(
                    f"the contract has no {cover.metric} target at this severity",
                    f"{at}.severity",
                    severity,
                )
            other = table.get(key)
            if other is not None and other.id != clause.id:
                raise self.fail(
                    f"{cover.metric}/{severity} is already covered by clause {other.id!r}",
                    at,
                    clause.id,
                )
            table[key] = clause

    def record(self, contract_id: str, versions: list[tuple[int, ContractTerms]]) -> ContractRecord:
        """All versions of one contract; refuses repeats, customer changes and undated updates."""
        first_index, first = min(versions, key=lambda v: (v[1].version, v[0]))
        seen: dict[int, int] = {}
        for index, terms in sorted(versions):
            if terms.version in seen:
                raise self.fail(
                    f"duplicate contract id (version {terms.version} also at "
                    f"contracts[{seen[terms.version]}])",
                    f"contracts[{index}].contract_id",
                    contract_id,
                )
            seen[terms.version] = index
            if terms.customer_id != first.customer_id:
                raise self.fail(
                    f"versions of one contract must name one customer (contracts[{first_index}] "
                    f"names {first.customer_id!r})",
                    f"contracts[{index}].customer_id",
                    terms.customer_id,
                )
            if terms is not first and terms.effective_from is None:
                raise self.fail(
                    f"version {terms.version} supersedes version {first.version}, so it needs "
                    "effective_from",
                    f"contracts[{index}].effective_from",
                )
        ordered = tuple(t for _, t in sorted(versions, key=lambda v: v[1].version))
        return ContractRecord(contract_id=contract_id, versions=ordered)


def _calendar_of(name: str, raw: object, file: str) -> _Calendar:
    """Validate one calendar block with `BusinessCalendar.from_dict`, in its JSON form."""
    if raw == ALWAYS_OPEN:
        # The resolved form is always a block (`ContractTerms.calendars` holds mappings).
        raw = {"timezone": "UTC", "hours": ALWAYS_OPEN}
    try:
        # YAML dates (a holiday, a `dates` key) become the strings JSON carries.
        block = orjson.loads(orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS))
    except TypeError as exc:
        raise InvalidContract(str(exc), path=f"calendars.{name}", value=raw, file=file) from None
    try:
        BusinessCalendar.from_dict(block)
    except InvalidContract as exc:
        inner = f".{exc.path}" if exc.path else ""
        raise InvalidContract(
            _bare_message(exc),
            path=f"calendars.{name}{inner}",
            value=exc.value,
            file=file,
        ) from None
    timezone = block.get("timezone", "UTC") if isinstance(block, dict) else "UTC"
    return _Calendar(block=block, timezone=timezone)


def _bare_message(exc: InvalidContract) -> str:
    """The message an `InvalidContract` was built with, without its place and value."""
    text = str(exc)
    where = ":".join(p for p in (exc.file, exc.path) if p)
    text = text.removeprefix(f"{where}: ") if where else text
    return text.removesuffix(f" (got {exc.value!r})") if exc.value is not None else text


def _merge(base: TargetSpec | None, over: TargetSpec | None) -> TargetSpec:
    if base is None:
        return over or TargetSpec()
    if over is None:
        return base
    return base.model_copy(update=over.model_dump(exclude_none=True))


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _as_instant(value: date | datetime | None, zone: ZoneInfo) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=zone)
