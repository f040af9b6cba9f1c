"""The `contracts` commands: validate a contracts file, apply it to the topic, show the terms."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import click

from sla_stream.core.contract_versions import published_conflicts
from sla_stream.core.contracts import load_contracts
from sla_stream.core.durations import describe_seconds
from sla_stream.core.errors import InvalidContract
from sla_stream.core.terms import ContractRecord, ContractTerms
from sla_stream.settings import Settings

DEFAULT_BROKER = "127.0.0.1:9092"  # where `sla-stream broker` listens by default

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_BROKER_HELP = f"HOST:PORT[,...]; default SLA_BROKER, else {DEFAULT_BROKER}"


@click.group()
def contracts() -> None:
    """Contracts: validate a file, publish it to the contracts topic, show effective terms."""


@contracts.command()
@click.argument("file", type=_FILE)
def validate(file: Path) -> None:
    """Check FILE (YAML or JSON) and resolve every contract; needs no broker."""
    records = _load(file)
    versions = sum(len(r.versions) for r in records.values())
    targets = sum(len(v.targets) for r in records.values() for v in r.versions)
    for record in records.values():
        latest = record.versions[-1]
        click.echo(
            f"  {record.contract_id}: customer {latest.customer_id}, tier {latest.tier}, "
            f"{_plural(len(record.versions), 'version')}, {_plural(len(latest.targets), 'target')}"
        )
    click.echo(
        f"{file}: valid: {_plural(len(records), 'contract')}, "
        f"{_plural(versions, 'version')}, {_plural(targets, 'target')}"
    )


@contracts.command()
@click.argument("file", type=_FILE)
@click.option("--broker", help=_BROKER_HELP)
def apply(file: Path, broker: str | None) -> None:
    """Publish every contract of FILE, resolved, to the compacted contracts topic.

    Refused, publishing nothing, if the file changes or drops a version already published:
    incidents are counted under the version they opened with, so new terms are a new version.
    """
    from sla_stream.stream.contracts_topic import (
        contracts_topic,
        publish_contracts,
        read_published,
    )

    records = _load(file)
    settings = Settings()
    bootstrap = broker or settings.broker or DEFAULT_BROKER
    spec = contracts_topic(settings)
    try:
        published = asyncio.run(read_published(bootstrap, spec))
    except Exception as exc:  # aiokafka's connection errors have no common base worth naming
        raise click.ClickException(f"cannot read {spec.name} on {bootstrap}: {exc!r}") from exc
    conflicts = published_conflicts(published, records)
    if conflicts:
        raise click.ClickException(
            f"{file}: refused, nothing published: a published version is immutable\n  "
            + "\n  ".join(conflicts)
        )
    try:
        sent = asyncio.run(publish_contracts(bootstrap, spec, records))
    except Exception as exc:  # aiokafka's connection errors have no common base worth naming
        raise click.ClickException(f"cannot publish to {bootstrap}: {exc!r}") from exc
    click.echo(f"published {_plural(sent, 'contract')} to {spec.name} on {bootstrap}")


@contracts.command()
@click.argument("contract_id")
@click.option("--file", type=_FILE, help="read FILE instead of the contracts topic")
@click.option("--broker", help=_BROKER_HELP)
@click.option("--version", "version", type=int, help="only this version")
def show(contract_id: str, file: Path | None, broker: str | None, version: int | None) -> None:
    """Print the effective terms of CONTRACT_ID, one table per version."""
    if file is not None:
        records = _load(file)
        source = str(file)
    else:
        from sla_stream.stream.contracts_topic import read_contracts

        settings = Settings()
        bootstrap = broker or settings.broker or DEFAULT_BROKER
        source = f"{settings.topic('contracts')} on {bootstrap}"
        try:
            records = asyncio.run(read_contracts(bootstrap, settings.topic("contracts")))
        except Exception as exc:  # as in `apply`: report the broker's failure, not a traceback
            raise click.ClickException(f"cannot read {source}: {exc!r}") from exc
    record = records.get(contract_id)
    if record is None:
        known = ", ".join(sorted(records)) or "none"
        raise click.ClickException(f"no contract {contract_id!r} in {source} (known: {known})")
    chosen = _versions(record, version)
    click.echo("\n\n".join(render_terms(terms) for terms in chosen))


def _versions(record: ContractRecord, version: int | None) -> list[ContractTerms]:
    if version is None:
        return list(record.versions)
    terms = record.version(version)
    if terms is None:
        have = ", ".join(str(v.version) for v in record.versions)
        raise click.ClickException(f"{record.contract_id} has no version {version} (has {have})")
    return [terms]


def render_terms(terms: ContractTerms) -> str:
    """A header naming the contract version, then a table of its targets."""
    value = f"{terms.value:,.0f} {terms.currency}" if terms.value is not None else "not stated"
    header = [
        f"{terms.contract_id} version {terms.version}: customer {terms.customer_id}"
        + (f" ({terms.customer_tier})" if terms.customer_tier else "")
        + f", tier {terms.tier}, value {value}",
        f"in force {_when(terms.effective_from, 'always')} until "
        f"{_when(terms.effective_to, 'further notice')}; periods in {terms.timezone}; "
        f"pause statuses: {', '.join(terms.pause_statuses) or 'none'}",
    ]
    rows = [("metric", "severity", "allowance", "calendar", "warn at", "pauses", "clause")]
    for t in terms.targets:
        rows.append(
            (
                t.metric,
                t.severity,
                describe_seconds(t.allowance_s),
                t.calendar,
                " ".join(f"{x:.0%}" for x in t.warning_thresholds) or "never",
                "yes" if t.pauses else "no",
                f"{t.clause_id} {t.clause_title}",
            )
        )
    return "\n".join([*header, "", *_table(rows), *_service_levels(terms)])


def _service_levels(terms: ContractTerms) -> list[str]:
    """The service levels and the credit clause, if the version has them."""
    if not terms.service_levels:
        return []
    from sla_stream.web.commitments import credit_words, level_words

    rows = [("service level", "commitment", "clause")]
    rows += [
        (lv.id, level_words(lv), f"{lv.clause_id} {lv.clause_title}") for lv in terms.service_levels
    ]
    out = ["", *_table(rows)]
    credit = terms.service_credit
    if credit is not None:
        out += [
            "",
            f"service credit ({credit.clause_id} {credit.clause_title}): "
            + credit_words(credit, terms.currency),
        ]
    return out


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def _when(instant: datetime | None, otherwise: str) -> str:
    return instant.isoformat() if instant is not None else otherwise


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _load(file: Path) -> dict[str, ContractRecord]:
    try:
        return load_contracts(file)
    except InvalidContract as exc:
        raise click.ClickException(str(exc)) from None
