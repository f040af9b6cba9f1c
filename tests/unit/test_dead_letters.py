"""Dead letters without a broker: size budget, null values, reasons, shrinking, the limit's
window, the events gate on a consumer's partition sets, and the admin route's access rule."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from sla_stream.core.errors import InvalidEvent
from sla_stream.core.event_codec import MAX_NESTING, check_nesting, decode_event
from sla_stream.core.models import MAX_DETAIL_CHARS, DeadLetter
from sla_stream.stream.dead_letter_limit import DeadLetterWindow, EventsGate, pause_fetching
from sla_stream.stream.metrics import Metrics
from sla_stream.stream.publish import shrink
from sla_stream.web.admin import AdminAccess
from sla_stream.web.auth import TokenSet, hash_token
from sla_stream.web.ingest import check_items

TOPIC = "sla.incident-events"


def letter(raw: bytes | None, max_bytes: int | None = None, detail: str = "d") -> DeadLetter:
    return DeadLetter.of(
        raw, topic=TOPIC, reason="oversize", detail=detail, max_bytes=max_bytes, partition=1,
        offset=9,
    )  # fmt: skip


# --- DeadLetter.of ------------------------------------------------------------------------


def test_a_null_value_is_a_letter_with_no_copy_and_no_size() -> None:
    dl = letter(None)
    assert (dl.original(), dl.original_size, dl.truncated) == (b"", None, False)
    assert "original_size" not in orjson.loads(dl.to_json())


def test_a_small_original_is_kept_whole_with_its_size() -> None:
    dl = letter(b'{"a": 1}', max_bytes=4096)
    assert (dl.original(), dl.original_text, dl.original_size, dl.truncated) == (
        b'{"a": 1}', '{"a": 1}', 8, False
    )  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        b"x" * 1_000_000,  # text: copied twice (base64 and text)
        b"\x01" * 300_000,  # control characters: escaped text is 6 bytes a byte
        "é".encode() * 200_000,  # multi-byte UTF-8: a cut must not split a character
        b"\xff\x00" * 400_000,  # not UTF-8: base64 only
    ],
)
def test_an_oversized_original_is_cut_to_fit_and_says_so(raw: bytes) -> None:
    budget = 64 * 1024
    dl = letter(raw, max_bytes=budget)
    assert len(dl.to_json()) <= budget
    assert dl.truncated and dl.original_size == len(raw)
    copy = dl.original()
    assert 0 < len(copy) < len(raw) and raw.startswith(copy)
    assert len(dl.to_json()) > budget // 2  # cut to fit, not to nothing
    if dl.original_text is not None:
        text = dl.original_text.encode()
        assert copy.startswith(text) and len(copy) - len(text) <= 3  # no half character
    again = DeadLetter.from_json(dl.to_json())
    assert again == dl


def test_old_letters_without_the_new_fields_still_read() -> None:
    old = b'{"original_b64":"eA==","topic":"t","reason":"not_json","detail":""}'
    dl = DeadLetter.from_json(old)
    assert (dl.original(), dl.truncated, dl.original_size) == (b"x", False, None)


def test_a_long_detail_is_cut() -> None:
    dl = letter(b"x", detail="y" * 50_000)
    assert len(dl.detail) < MAX_DETAIL_CHARS + 40 and dl.detail.endswith("(50000 characters)")


def test_shrink_keeps_a_quarter_then_nothing_and_the_original_size() -> None:
    dl = letter(b"z" * 40_000)
    smaller = shrink(dl)
    assert len(smaller.original()) == 10_000 and smaller.truncated
    assert smaller.original_size == 40_000 and smaller.offset == 9
    assert shrink(letter(b"z" * 1000)).original() == b""


# --- reasons: what the topic and the ingest both refuse --------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "null_value"),
        (b"", "empty"),
        (b'{"event_id": "\xff"}', "not_utf8"),
        (b'{"a": NaN}', "not_json"),
        (b'{"a": 1e400}', "not_json"),
        (b"[1]", "invalid"),
    ],
)
def test_decode_event_reasons(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw, 65536)
    assert caught.value.reason == reason


def nest(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_limit_counts_the_event_object_and_names_the_field() -> None:
    check_nesting({"attributes": nest(MAX_NESTING - 1)})  # exactly at the limit
    with pytest.raises(InvalidEvent) as caught:
        check_nesting({"ok": 1, "attributes": nest(MAX_NESTING)})
    assert (caught.value.reason, caught.value.field) == ("too_deep", "attributes")
    check_nesting(nest(MAX_NESTING))
    with pytest.raises(InvalidEvent):
        check_nesting(nest(MAX_NESTING + 1))
    check_nesting("a scalar")


def test_ingest_refuses_what_orjson_cannot_write_with_the_topic_s_reason() -> None:
    # 300 levels parse (orjson reads 1,024) but do not write (254): once an HTTP 500.
    body = b'[{"event_id": "e", "attributes": ' + b"[" * 300 + b"]" * 300 + b"}]"
    batch = check_items(body, max_event_bytes=65536)
    assert [(r["reason"], r["field"]) for r in batch.results] == [("too_deep", "attributes")]
    with pytest.raises(InvalidEvent) as caught:
        decode_event(body[1:-1], 65536)
    assert (caught.value.reason, caught.value.field) == ("too_deep", "attributes")


# --- the dead-letter limit -----------------------------------------------------------------


def test_window_trips_past_the_ratio_once_min_count_dead_letters_are_in_it() -> None:
    w = DeadLetterWindow(max_ratio=0.5, size=10, min_count=3)
    assert [w.record(True) for _ in range(2)] == [False, False]  # ratio 1 but only 2
    assert w.record(True) is True
    w.reset()
    for dead in (False, True) * 5:  # never more than half: not past the ratio
        assert w.record(dead) is False
    assert (w.count, w.dead, w.ratio) == (10, 5, 0.5)


def test_window_forgets_what_slides_out() -> None:
    w = DeadLetterWindow(max_ratio=0.5, size=4, min_count=1)
    for dead in (True, True, True, False):
        w.record(dead)
    assert w.dead == 3
    for _ in range(3):
        w.record(False)
    assert (w.count, w.dead, w.exceeded) == (4, 0, False)


def test_a_ratio_of_one_never_trips() -> None:
    w = DeadLetterWindow(max_ratio=1.0, size=5, min_count=1)
    assert not any(w.record(True) for _ in range(20))


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    """Faust's consumer's partition bookkeeping, the part `EventsGate` touches."""

    def __init__(self, tps: set[TP]) -> None:
        self._assigned = set(tps)
        self._active_partitions: set[TP] = set(tps)
        self._paused_partitions: set[TP] = set()

    def assignment(self) -> set[TP]:
        return self._assigned

    def _get_active_partitions(self) -> set[TP]:
        return self._active_partitions

    def resume_partitions(self, tps: set[TP]) -> None:
        self._get_active_partitions().update(tps)
        self._paused_partitions.difference_update(tps)


def test_gate_pauses_events_not_ticks_reapplies_and_resumes() -> None:
    events = {TP(TOPIC, p) for p in range(2)}
    ticks = {TP("sla.ticks", p) for p in range(2)}
    consumer = FakeConsumer(events | ticks)
    metrics = Metrics()
    gate = EventsGate(DeadLetterWindow(0.5, 10, 3), metrics, TOPIC, lambda: consumer)
    in_flight = consumer._get_active_partitions()  # the set a fetch in progress filters by
    for _ in range(3):
        gate.record(True)
    assert gate.paused and consumer._get_active_partitions() == ticks
    assert in_flight == events | ticks  # replaced, not mutated: that batch is delivered whole
    assert metrics.registry.get_sample_value("sla_dead_letter_paused") == 1
    assert gate.status()["paused_ratio"] == 1.0

    consumer._active_partitions.update(events)  # a rebalance or a recovery hands them back
    gate.enforce()  # the next tick
    assert consumer._get_active_partitions() == ticks

    assert gate.resume() is True
    assert consumer._get_active_partitions() == events | ticks and not consumer._paused_partitions
    assert metrics.registry.get_sample_value("sla_dead_letter_paused") == 0
    assert gate.window.count == 0 and gate.resume() is False


def test_pause_fetching_is_a_no_op_when_already_paused() -> None:
    consumer = FakeConsumer({TP(TOPIC, 0), TP("sla.ticks", 0)})
    pause_fetching(consumer, {TP(TOPIC, 0)})
    active = consumer._get_active_partitions()
    pause_fetching(consumer, {TP(TOPIC, 0)})
    assert consumer._get_active_partitions() is active


# --- admin access --------------------------------------------------------------------------


def test_admin_routes_answer_loopback_only_without_tokens_and_need_one_when_set() -> None:
    open_access = AdminAccess(TokenSet())
    assert open_access.refusal(None, "127.0.0.1") is None
    assert open_access.refusal(None, "::1") is None
    for remote in ("10.1.2.3", None, "not-an-ip"):
        refused = open_access.refusal(None, remote)
        assert refused is not None and refused.status == 403
    locked = AdminAccess(TokenSet.parse([hash_token("admin-secret")]))
    denied = locked.refusal(None, "127.0.0.1")
    assert denied is not None and denied.status == 401
    assert locked.refusal("Bearer admin-secret", "10.1.2.3") is None
