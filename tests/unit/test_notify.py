"""The Alertmanager bridge's pure part: labels, what fires, what each clear resolves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from sla_stream.core.models import Alert
from sla_stream.notify.alertmanager import AlertBook, body, labels, to_alertmanager
from sla_stream.notify.bridge import POST_CHUNK, AlertmanagerClient, BridgeConfig
from sla_stream.notify.metrics import BridgeMetrics

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = (T0 + timedelta(hours=1)).timestamp()


def alert(
    kind: str, *, incident: str = "INC-1", metric: str = "first_response", **kw: Any
) -> Alert:
    threshold = {"warning": 0.5, "breach": 1.0}.get(kind)
    fields: dict[str, Any] = {
        "alert_id": f"{incident}-{metric}-{kind}-{kw.get('threshold', threshold)}",
        "kind": kind,
        "incident_id": incident,
        "contract_id": "acme-gold",
        "customer_id": "acme",
        "metric": metric,
        "severity": "P1",
        "threshold": threshold,
        "allowance_s": 3600.0,
        "elapsed_s": 1800.0,
        "deadline": T0 + timedelta(hours=1),
        "clause_id": "7.1",
        "clause_title": "Critical incident handling",
        "emitted_at": T0 + timedelta(minutes=30),
    }
    fields.update(kw)
    return Alert(**fields)


def test_labels_name_the_clock_threshold_and_terms_and_the_id_is_an_annotation() -> None:
    warning = alert("warning", threshold=0.75)
    assert labels(warning) == {
        "alertname": "SlaWarning",
        "contract": "acme-gold",
        "customer": "acme",
        "incident": "INC-1",
        "metric": "first_response",
        "severity": "P1",
        "clause": "7.1",
        "threshold": "0.75",
    }
    entry = to_alertmanager(alert("breach"), ends_at_s=NOW)
    assert entry["labels"]["alertname"] == "SlaBreach" and "threshold" not in entry["labels"]
    assert entry["annotations"]["alert_id"] == "INC-1-first_response-breach-1.0"
    assert entry["annotations"]["summary"].startswith("INC-1: first response breached")
    assert "1 hour" in entry["annotations"]["description"]
    assert entry["startsAt"] == "2026-03-02T09:30:00+00:00"
    assert entry["endsAt"] == "2026-03-02T10:00:00+00:00"
    # Only the alert itself decides the labels: a repeat is the same Alertmanager alert.
    assert to_alertmanager(alert("breach"), NOW) == entry


def test_warnings_and_breaches_fire_once_and_repeats_change_nothing() -> None:
    book = AlertBook()
    first = book.apply(alert("warning"), 0, NOW)
    assert [a.kind for a in first.fire] == ["warning"] and not first.resolve
    assert not book.apply(alert("warning"), 0, NOW)
    assert [a.kind for a in book.apply(alert("breach"), 0, NOW).fire] == ["breach"]
    assert len(book) == 2


def test_met_resolves_its_clocks_warnings_only() -> None:
    book = AlertBook()
    for a in (
        alert("warning"),
        alert("warning", threshold=0.75),
        alert("warning", metric="resolution"),
        alert("warning", incident="INC-2"),
    ):
        book.apply(a, 0, NOW)
    change = book.apply(alert("met"), 0, NOW)
    assert sorted(a.threshold for a in change.resolve) == [0.5, 0.75]
    assert all(a.metric == "first_response" and a.incident_id == "INC-1" for a in change.resolve)
    assert not change.fire and len(book) == 2
    # A repeat of a cleared warning (a worker re-sending its outbox) does not fire it again.
    assert not book.apply(alert("warning"), 0, NOW)
    assert not book.apply(alert("met"), 0, NOW)


def test_each_update_cycle_is_an_alertmanager_alert_of_its_own() -> None:
    """Update cycles (engine rule 14) share incident and metric: the cycle tells them apart."""
    book = AlertBook()

    def cycle(kind: str, n: int) -> Alert:
        return alert(kind, metric="update", cycle=n, alert_id=f"update-{n}-{kind}")

    book.apply(cycle("breach", 2), 0, NOW)
    book.apply(cycle("warning", 3), 0, NOW)
    assert labels(cycle("breach", 2))["cycle"] == "2"
    assert labels(cycle("warning", 3)) != labels(cycle("warning", 2))
    change = book.apply(cycle("stopped", 2), 0, NOW)  # clears cycle 2's breach, not cycle 3
    assert [(a.kind, a.cycle) for a in change.resolve] == [("breach", 2)]
    assert [(a.kind, a.cycle) for a in book.firing(NOW)] == [("warning", 3)]
    assert "cycle" not in labels(alert("warning"))


def test_stopped_resolves_the_breach_and_the_warnings_it_superseded() -> None:
    book = AlertBook()
    for a in (alert("warning"), alert("breach"), alert("breach", metric="resolution")):
        book.apply(a, 0, NOW)
    change = book.apply(alert("stopped"), 0, NOW)
    assert sorted(a.kind for a in change.resolve) == ["breach", "warning"]
    assert [a.metric for a in book.firing(NOW)] == ["resolution"]


def test_retracted_resolves_the_alert_it_names_and_a_correction_fires() -> None:
    book = AlertBook()
    wrong = alert("breach")
    book.apply(wrong, 0, NOW)
    retraction = alert("retracted", alert_id="r1", retracts=wrong.alert_id)
    change = book.apply(retraction, 0, NOW)
    assert change.resolve == [wrong] and len(book) == 0
    assert not book.apply(wrong, 0, NOW)  # the retracted id never fires again
    corrected = alert("breach", alert_id="breach-rev1", elapsed_s=3600.0)
    assert book.apply(corrected, 0, NOW).fire == [corrected]
    # Retracting an id the book does not hold resolves nothing but is remembered.
    assert not book.apply(alert("retracted", alert_id="r2", retracts="unknown"), 0, NOW)
    assert not book.apply(alert("warning", alert_id="unknown"), 0, NOW)


def test_one_entry_per_label_set_in_a_post_the_last_change_winning() -> None:
    old = alert("warning")
    new = alert("warning", alert_id="warning-rev1", elapsed_s=1900.0)
    entries = body([new], [old], NOW, valid_for_s=240)
    assert len(entries) == 1
    assert entries[0]["annotations"]["alert_id"] == "warning-rev1"
    assert entries[0]["endsAt"] == datetime.fromtimestamp(NOW + 240, UTC).isoformat()
    resolved = body([], [old], NOW, valid_for_s=240)
    assert resolved[0]["endsAt"] == datetime.fromtimestamp(NOW, UTC).isoformat()


def test_max_age_keeps_history_out_and_ages_out_what_fires() -> None:
    book = AlertBook(max_age_s=7200)
    ancient = alert("breach", emitted_at=T0 - timedelta(days=30))
    assert not book.apply(ancient, 0, NOW)
    book.apply(alert("warning"), 0, NOW)
    assert len(book.firing(NOW)) == 1
    assert book.firing(NOW + 7200) == [] and len(book) == 0


def test_dropping_partitions_forgets_without_resolving() -> None:
    book = AlertBook()
    book.apply(alert("warning"), 0, NOW)
    book.apply(alert("warning", incident="INC-2"), 1, NOW)
    assert book.drop_partitions([0]) == 1
    assert [a.incident_id for a in book.firing(NOW)] == ["INC-2"]
    assert not book.apply(alert("met"), 0, NOW)  # nothing left to resolve on partition 0
    assert book.apply(alert("warning"), 0, NOW)  # the next owner's replay may bring it back


def test_at_risk_is_not_routed() -> None:
    assert not AlertBook().apply(alert("at_risk"), 0, NOW)


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status

    async def text(self) -> str:
        return ""

    async def __aenter__(self) -> FakeResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class FlakySession:
    """Refuses the connection `down` times, then answers 200; records each post's timeout."""

    def __init__(self, down: int) -> None:
        self.down, self.timeouts = down, []

    def post(self, url: str, **kw: Any) -> FakeResponse:
        self.timeouts.append(kw["timeout"].total)
        if self.down:
            self.down -= 1
            raise aiohttp.ClientConnectionError("refused")
        return FakeResponse(200)


async def test_the_client_waits_through_its_hook_between_retries_and_chunks() -> None:
    """The bridge's hook polls its consumer; a client that slept instead would be dropped from
    its group after max_poll_interval. One attempt is bounded by half that interval."""
    config = BridgeConfig(
        urls=("http://127.0.0.1:9093",),
        bootstrap="-",
        topic="t",
        group_id="g",
        max_poll_interval_s=5.0,
    )
    session, waits = FlakySession(down=4), []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    client = AlertmanagerClient(config, session, BridgeMetrics(), wait)  # type: ignore[arg-type]
    assert await client.post([{"labels": {"n": str(i)}} for i in range(POST_CHUNK + 1)])
    assert waits == [0.5, 1.0, 2.0, 4.0, 0.0]  # four backoffs, then one between the two chunks
    assert session.timeouts == [2.5] * 6
    assert not await client.post([{"labels": {}}]) and len(waits) == 5  # accepted at once
