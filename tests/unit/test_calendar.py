"""Business calendar arithmetic: table-driven cases with hand-derived expectations.

Expected instants are written with fixed UTC offsets (and a comment deriving them), so a test
compares instants and does not lean on zoneinfo or on the code under test. The DST facts used:
Europe/Berlin 2026 springs forward Sun 29 Mar 02:00 +01 -> 03:00 +02 and falls back Sun 25 Oct
03:00 +02 -> 02:00 +01; America/New_York 2026: Sun 8 Mar 02:00 -05 -> 03:00 -04, Sun 1 Nov
02:00 -04 -> 01:00 -05; America/Sao_Paulo 2015: Sun 18 Oct 00:00 -03 -> 01:00 -02 (midnight does
not exist), Sat 21 Feb 24:00 -02 -> 23:00 -03; Asia/Tehran 2021: Mon 22 Mar 00:00 +03:30 ->
01:00 +04:30, Tue 21 Sep 24:00 +04:30 -> 23:00 +03:30; Asia/Kolkata is +05:30 all year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla_stream.core.calendar import BusinessCalendar, calendar_for
from sla_stream.core.errors import InvalidContract

H = 3600
M = 60
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORK_DAYS = ALL_DAYS[:5]
FAR_HOLIDAY = ["2030-01-01"]  # keeps a 00:00-24:00 calendar off the "always open" shortcut


def cal(tz: str, hours: dict[str, Any] | None = None, **extra: Any) -> BusinessCalendar:
    block: dict[str, Any] = {"timezone": tz, **extra}
    if hours is not None:
        block["hours"] = hours
    return BusinessCalendar.from_dict(block)


def days(ranges: list[list[str]], names: tuple[str, ...] = WORK_DAYS) -> dict[str, Any]:
    return {d: ranges for d in names}


def t(y: int, mo: int, d: int, h: int = 0, mi: int = 0, off: float = 0, us: int = 0) -> datetime:
    """An instant at a fixed UTC offset `off` (hours)."""
    return datetime(y, mo, d, h, mi, 0, us, tzinfo=timezone(timedelta(hours=off)))


BERLIN = cal("Europe/Berlin", days([["09:00", "17:00"]]), holidays=["2026-12-25"])
BERLIN_7 = cal("Europe/Berlin", days([["09:00", "17:00"]], ALL_DAYS))
BERLIN_0_24 = cal("Europe/Berlin", days([["00:00", "24:00"]], ALL_DAYS), holidays=FAR_HOLIDAY)
BERLIN_OPEN = cal("Europe/Berlin")
BERLIN_EARLY = cal("Europe/Berlin", {"sun": [["01:00", "05:00"]]})
BERLIN_GAP = cal("Europe/Berlin", {"sun": [["02:00", "03:00"]], "mon": [["09:00", "10:00"]]})
BERLIN_IN_GAP = cal("Europe/Berlin", {"sun": [["02:30", "04:00"]]})
LUNCH = cal("Europe/Berlin", days([["09:00", "12:00"], ["13:00", "17:00"]]))
NIGHT = cal(
    "Europe/Berlin",
    {**days([["22:00", "24:00"]]), **days([["00:00", "06:00"]], ALL_DAYS[1:6])},
    holidays=["2026-03-03"],
)
WEEKEND_NIGHT = cal("Europe/Berlin", {"sat": [["22:00", "24:00"]], "sun": [["00:00", "06:00"]]})
BERLIN_BE = cal(
    "Europe/Berlin", days([["09:00", "17:00"]]), country_holidays={"country": "DE", "subdiv": "BE"}
)
NEW_YORK = cal("America/New_York", days([["09:00", "17:00"]]))
NEW_YORK_0_24 = cal("America/New_York", days([["00:00", "24:00"]], ALL_DAYS), holidays=FAR_HOLIDAY)
SAO_PAULO = cal("America/Sao_Paulo", days([["09:00", "17:00"]]))
SAO_PAULO_0_24 = cal(
    "America/Sao_Paulo", days([["00:00", "24:00"]], ALL_DAYS), holidays=FAR_HOLIDAY
)
SAO_PAULO_EARLY = cal("America/Sao_Paulo", {"sun": [["00:00", "02:00"]]})
KOLKATA = cal("Asia/Kolkata", days([["09:30", "17:30"]]))
TEHRAN = cal(
    "Asia/Tehran",
    {
        **days([["08:00", "16:00"]], ("sat", "sun", "mon", "tue", "wed")),
        "thu": [["08:00", "12:00"]],
    },
)
TEHRAN_0_24 = cal("Asia/Tehran", days([["00:00", "24:00"]], ALL_DAYS), holidays=FAR_HOLIDAY)
ALWAYS = BusinessCalendar.from_dict("24x7")
# Tue 10 Mar 2026 16:59:59.999999 CET, one microsecond before closing.
BEFORE_CLOSE = t(2026, 3, 10, 16, 59, off=1) + timedelta(seconds=59, microseconds=999_999)

ADD_CASES = [
    # -- office hours Mon-Fri 09-17, Europe/Berlin, holiday 2026-12-25
    ("inside hours", BERLIN, t(2026, 3, 10, 10, off=1), 2 * H, t(2026, 3, 10, 12, off=1)),
    # Tue 07:00 is before opening: counting starts 09:00, +1 h.
    ("before opening", BERLIN, t(2026, 3, 10, 7, off=1), H, t(2026, 3, 10, 10, off=1)),
    # Tue 18:00 is after closing: Wed 09:00 + 1 h.
    ("after closing", BERLIN, t(2026, 3, 10, 18, off=1), H, t(2026, 3, 11, 10, off=1)),
    # Sat: closed; Mon 09:00 + 1 h.
    ("on a weekend", BERLIN, t(2026, 3, 7, 12, off=1), H, t(2026, 3, 9, 10, off=1)),
    # Fri 16-17 is 1 h, Mon 09-10 the second.
    ("over a weekend", BERLIN, t(2026, 3, 6, 16, off=1), 2 * H, t(2026, 3, 9, 10, off=1)),
    # Fri 16:00 + 1 h ends exactly at closing: Fri 17:00, not Mon 09:00.
    ("lands on closing", BERLIN, t(2026, 3, 6, 16, off=1), H, t(2026, 3, 6, 17, off=1)),
    ("whole day", BERLIN, t(2026, 3, 9, 9, off=1), 8 * H, t(2026, 3, 9, 17, off=1)),
    # One microsecond before closing + 1 us = closing; + 2 us = 1 us after Wed's opening.
    ("last microsecond", BERLIN, BEFORE_CLOSE, 1e-6, t(2026, 3, 10, 17, off=1)),
    ("microsecond over", BERLIN, BEFORE_CLOSE, 2e-6, t(2026, 3, 11, 9, off=1, us=1)),
    # Thu 24 Dec 8 h, Fri 25 Dec holiday, weekend, Mon 28 Dec 8 h -> Mon 17:00.
    ("holiday", BERLIN, t(2026, 12, 24, 9, off=1), 16 * H, t(2026, 12, 28, 17, off=1)),
    # 15 business days from Wed 13:00 = three whole weeks -> Wed 13:00 three weeks on.
    ("three weeks", BERLIN, t(2026, 2, 4, 13, off=1), 15 * 8 * H, t(2026, 2, 25, 13, off=1)),
    # Mon 2024-01-01 + 156 weeks = Mon 2026-12-28; 780 weekdays minus Fri 25 Dec 2026 = 779:
    # the 779th ends Thu 24 Dec 17:00, the 780th Mon 28 Dec 17:00 (more than two week blocks).
    ("three years", BERLIN, t(2024, 1, 1, 9, off=1), 779 * 8 * H, t(2026, 12, 24, 17, off=1)),
    ("three years +1", BERLIN, t(2024, 1, 1, 9, off=1), 780 * 8 * H, t(2026, 12, 28, 17, off=1)),
    # Spring-forward weekend: Fri 16-17 CET, Mon 09-10 CEST.
    ("DST spring office", BERLIN, t(2026, 3, 27, 16, off=1), 2 * H, t(2026, 3, 30, 10, off=2)),
    ("DST fall office", BERLIN, t(2026, 10, 23, 16, off=2), 2 * H, t(2026, 10, 26, 10, off=1)),
    # 15:00Z is Fri 16:00 CET: as above, Mon 10:00 CET.
    ("UTC input", BERLIN, t(2026, 3, 6, 15), 2 * H, t(2026, 3, 9, 10, off=1)),
    # 10:00-05:00 is 15:00Z, the same instant.
    ("-05:00 input", BERLIN, t(2026, 3, 6, 10, off=-5), 2 * H, t(2026, 3, 9, 10, off=1)),
    # -- 09-17 on every day: the DST Sunday has 8 h of 09-17 like any other day
    # Sat 16-17 (1 h), Sun 29 Mar 09:00 CEST + 1 h.
    ("7-day spring", BERLIN_7, t(2026, 3, 28, 16, off=1), 2 * H, t(2026, 3, 29, 10, off=2)),
    ("7-day spring day", BERLIN_7, t(2026, 3, 29, 9, off=2), 8 * H, t(2026, 3, 29, 17, off=2)),
    ("7-day fall day", BERLIN_7, t(2026, 10, 25, 9, off=1), 8 * H, t(2026, 10, 25, 17, off=1)),
    # -- 00:00-24:00 every day, Berlin: 23 h and 25 h days on the absolute timeline
    # Sun 00:00 CET = Sat 23:00Z; Mon 00:00 CEST = Sun 22:00Z: 23 h.
    ("0-24 spring", BERLIN_0_24, t(2026, 3, 29, 0, off=1), 23 * H, t(2026, 3, 30, 0, off=2)),
    # 01:30 CET = 00:30Z, + 1 h = 01:30Z = 03:30 CEST.
    ("0-24 gap", BERLIN_0_24, t(2026, 3, 29, 1, 30, off=1), H, t(2026, 3, 29, 3, 30, off=2)),
    # Sun 00:00 CEST = Sat 22:00Z; Mon 00:00 CET = Sun 23:00Z: 25 h.
    ("0-24 fall", BERLIN_0_24, t(2026, 10, 25, 0, off=2), 25 * H, t(2026, 10, 26, 0, off=1)),
    # The first 02:30 (CEST, 00:30Z) + 1 h = 01:30Z = the second 02:30 (CET): counted twice.
    ("0-24 repeat", BERLIN_0_24, t(2026, 10, 25, 2, 30, off=2), H, t(2026, 10, 25, 2, 30, off=1)),
    ("no hours", BERLIN_OPEN, t(2026, 3, 29, 0, off=1), 23 * H, t(2026, 3, 30, 0, off=2)),
    # -- a range across the change: Sun 01-05 is 00:00Z-03:00Z (3 h) in spring ...
    ("01-05 spring", BERLIN_EARLY, t(2026, 3, 29, 1, off=1), 3 * H, t(2026, 3, 29, 5, off=2)),
    # ... and 23:00Z (Sat) - 04:00Z (5 h) in autumn.
    ("01-05 fall", BERLIN_EARLY, t(2026, 10, 25, 1, off=2), 5 * H, t(2026, 10, 25, 5, off=1)),
    # Sat noon + 4 h: 3 h on 29 Mar, then Sun 5 Apr 01:00 CEST + 1 h.
    ("01-05 short", BERLIN_EARLY, t(2026, 3, 28, 12, off=1), 4 * H, t(2026, 4, 5, 2, off=2)),
    # Sun 02:00-03:00 does not exist on 29 Mar (02:00 fold=0 is 01:00Z, 03:00 CEST is 01:00Z):
    # nothing counts; Mon 09:00 CEST + 30 min.
    ("skipped hour", BERLIN_GAP, t(2026, 3, 28, 12, off=1), 30 * M, t(2026, 3, 30, 9, 30, off=2)),
    # On 25 Oct it is 02:00 CEST (00:00Z) to 03:00 CET (02:00Z): 2 h; 90 min -> 01:30Z.
    ("doubled hour", BERLIN_GAP, t(2026, 10, 24, 12, off=2), 90 * M, t(2026, 10, 25, 2, 30, off=1)),
    # Sun 02:30 does not exist on 29 Mar: fold=0 reads it at +01, 01:30Z (03:30 CEST); the range
    # closes 04:00 CEST = 02:00Z, so 30 min, ending at closing.
    ("opens in gap", BERLIN_IN_GAP, t(2026, 3, 28, 12, off=1), 30 * M, t(2026, 3, 29, 4, off=2)),
    # One minute more: Sun 5 Apr 02:30 CEST + 1 min.
    (
        "opens in gap +1",
        BERLIN_IN_GAP,
        t(2026, 3, 28, 12, off=1),
        31 * M,
        t(2026, 4, 5, 2, 31, off=2),
    ),
    # -- lunch break 12-13
    ("lunch over", LUNCH, t(2026, 3, 3, 11, off=1), 2 * H, t(2026, 3, 3, 14, off=1)),
    ("lunch closing", LUNCH, t(2026, 3, 3, 11, off=1), H, t(2026, 3, 3, 12, off=1)),
    ("lunch start", LUNCH, t(2026, 3, 3, 12, 30, off=1), 30 * M, t(2026, 3, 3, 13, 30, off=1)),
    # -- overnight shift Mon-Fri 22-24 + Tue-Sat 00-06, holiday Tue 2026-03-03
    # Mon 23-24 (1 h) + Tue 00-02.
    ("night", NIGHT, t(2026, 3, 9, 23, off=1), 3 * H, t(2026, 3, 10, 2, off=1)),
    ("night closing", NIGHT, t(2026, 3, 10, 5, off=1), H, t(2026, 3, 10, 6, off=1)),
    # Sat 05-06 (1 h), then Mon 22:00 + 1 h.
    ("night weekend", NIGHT, t(2026, 3, 7, 5, off=1), 2 * H, t(2026, 3, 9, 23, off=1)),
    # Mon 23-24 (1 h); Tue 3 Mar is a holiday, both its ranges go; Wed 00:00 + 1 h.
    ("night holiday", NIGHT, t(2026, 3, 2, 23, off=1), 2 * H, t(2026, 3, 4, 1, off=1)),
    # Sat 22:00 CET (21:00Z) to Sun 06:00 CEST (04:00Z) is 7 h; in autumn 20:00Z-05:00Z, 9 h.
    ("night spring", WEEKEND_NIGHT, t(2026, 3, 28, 22, off=1), 7 * H, t(2026, 3, 29, 6, off=2)),
    ("night fall", WEEKEND_NIGHT, t(2026, 10, 24, 22, off=2), 9 * H, t(2026, 10, 25, 6, off=1)),
    # -- public holidays of Berlin (DE-BE) from the holidays package
    # 120 days x 8 h from Mon 5 Jan: 24 weeks end Fri 19 Jun, but Good Friday 3 Apr, Easter
    # Monday 6 Apr, Labour Day Fri 1 May, Ascension Thu 14 May and Whit Monday 25 May are
    # weekday holidays: 5 more days -> Fri 26 Jun 17:00 CEST. (8 Mar falls on a Sunday.)
    ("120 days DE-BE", BERLIN_BE, t(2026, 1, 5, 9, off=1), 960 * H, t(2026, 6, 26, 17, off=2)),
    # Thu 2 Apr 16-17, Fri 3 and Mon 6 Apr are holidays: Tue 7 Apr 09:00 + 1 h.
    ("Easter DE-BE", BERLIN_BE, t(2026, 4, 2, 16, off=2), 2 * H, t(2026, 4, 7, 10, off=2)),
    # -- America/New_York, office hours and 00-24
    ("NY spring office", NEW_YORK, t(2026, 3, 6, 16, off=-5), 2 * H, t(2026, 3, 9, 10, off=-4)),
    ("NY fall office", NEW_YORK, t(2026, 10, 30, 16, off=-4), 2 * H, t(2026, 11, 2, 10, off=-5)),
    # Sun 00:00 EST = 05:00Z, Mon 00:00 EDT = 04:00Z (next day): 23 h.
    ("NY 0-24 spring", NEW_YORK_0_24, t(2026, 3, 8, 0, off=-5), 23 * H, t(2026, 3, 9, 0, off=-4)),
    # 01:30 EST = 06:30Z, + 1 h = 07:30Z = 03:30 EDT.
    ("NY 0-24 gap", NEW_YORK_0_24, t(2026, 3, 8, 1, 30, off=-5), H, t(2026, 3, 8, 3, 30, off=-4)),
    # Sun 00:00 EDT = 04:00Z, Mon 00:00 EST = 05:00Z (next day): 25 h.
    ("NY 0-24 fall", NEW_YORK_0_24, t(2026, 11, 1, 0, off=-4), 25 * H, t(2026, 11, 2, 0, off=-5)),
    # First 01:30 (EDT, 05:30Z) + 1 h = 06:30Z, the second 01:30 (EST).
    (
        "NY 0-24 repeat",
        NEW_YORK_0_24,
        t(2026, 11, 1, 1, 30, off=-4),
        H,
        t(2026, 11, 1, 1, 30, off=-5),
    ),
    # -- America/Sao_Paulo 2015, DST changes at midnight
    (
        "SP spring office",
        SAO_PAULO,
        t(2015, 10, 16, 16, off=-3),
        2 * H,
        t(2015, 10, 19, 10, off=-2),
    ),
    ("SP fall office", SAO_PAULO, t(2015, 2, 20, 16, off=-2), 2 * H, t(2015, 2, 23, 10, off=-3)),
    # Sat 17 Oct 00:00 -03 = 03:00Z; its 24:00 is Sun 00:00, which does not exist: fold=0 reads
    # it at -03, 03:00Z on the 18th = 01:00 -02. Saturday is 24 h and ends there.
    ("SP 0-24 Sat", SAO_PAULO_0_24, t(2015, 10, 17, 0, off=-3), 24 * H, t(2015, 10, 18, 1, off=-2)),
    # Sun 18 Oct from 03:00Z to Mon 00:00 -02 = 02:00Z on the 19th: 23 h.
    ("SP 0-24 Sun", SAO_PAULO_0_24, t(2015, 10, 18, 1, off=-2), 23 * H, t(2015, 10, 19, 0, off=-2)),
    # Sat 21 Feb 00:00 -02 = 02:00Z; Sun 22 Feb 00:00 -03 = 03:00Z: a 25 h Saturday.
    ("SP 0-24 fall", SAO_PAULO_0_24, t(2015, 2, 21, 0, off=-2), 25 * H, t(2015, 2, 22, 0, off=-3)),
    # The first 23:30 (-02, 01:30Z) + 1 h = 02:30Z = the second 23:30 (-03).
    (
        "SP 0-24 repeat",
        SAO_PAULO_0_24,
        t(2015, 2, 21, 23, 30, off=-2),
        H,
        t(2015, 2, 21, 23, 30, off=-3),
    ),
    # Sun 00:00-02:00 on 18 Oct: 03:00Z (fold=0) to 02:00 -02 = 04:00Z, 1 h, ending at closing.
    ("SP 00-02", SAO_PAULO_EARLY, t(2015, 10, 17, 12, off=-3), H, t(2015, 10, 18, 2, off=-2)),
    # -- half-hour zones
    # 03:00Z is 08:30 IST, before the 09:30 opening: 09:30 + 1 h = 10:30 IST = 05:00Z.
    ("Kolkata UTC in", KOLKATA, t(2026, 3, 2, 3), H, t(2026, 3, 2, 10, 30, off=5.5)),
    # Fri 17:00-17:30 (30 min), Mon 09:30 + 30 min.
    ("Kolkata weekend", KOLKATA, t(2026, 3, 6, 17, off=5.5), H, t(2026, 3, 9, 10, off=5.5)),
    # Thu 11-12 (1 h), Friday closed, Sat 08:00 + 1 h.
    ("Tehran weekend", TEHRAN, t(2026, 3, 5, 11, off=3.5), 2 * H, t(2026, 3, 7, 9, off=3.5)),
    # Sun 21 Mar 2021 15-16 (+03:30), Mon 22 Mar 08:00 +04:30 + 1 h.
    ("Tehran DST office", TEHRAN, t(2021, 3, 21, 15, off=3.5), 2 * H, t(2021, 3, 22, 9, off=4.5)),
    # Sun 21 Mar 00:00 +03:30 = 20 Mar 20:30Z; Tue 00:00 +04:30 = 22 Mar 19:30Z: 47 h.
    (
        "Tehran 0-24 spring",
        TEHRAN_0_24,
        t(2021, 3, 21, 0, off=3.5),
        47 * H,
        t(2021, 3, 23, 0, off=4.5),
    ),
    # Tue 21 Sep 00:00 +04:30 = 20 Sep 19:30Z; Wed 00:00 +03:30 = 21 Sep 20:30Z: 25 h.
    (
        "Tehran 0-24 fall",
        TEHRAN_0_24,
        t(2021, 9, 21, 0, off=4.5),
        25 * H,
        t(2021, 9, 22, 0, off=3.5),
    ),
    # -- 24x7 (UTC): plain elapsed time
    ("24x7", ALWAYS, t(2026, 3, 29, 0, 30), 10 * H, t(2026, 3, 29, 10, 30)),
    ("24x7 offset in", ALWAYS, t(2026, 3, 29, 2, off=2), 1e-6, t(2026, 3, 29, 0, us=1)),
]


@pytest.mark.parametrize(
    ("calendar", "start", "seconds", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ADD_CASES],
)
def test_add(
    calendar: BusinessCalendar, start: datetime, seconds: float, expected: datetime
) -> None:
    got = calendar.add(start, seconds)
    # Compared in UTC: PEP 495 makes == between zones False for a repeated wall time.
    assert got.astimezone(UTC) == expected.astimezone(UTC)
    assert got.utcoffset() == expected.utcoffset()  # so the result is in the calendar's zone
    assert got.tzinfo is calendar.timezone
    assert calendar.elapsed(start, got) == seconds


ELAPSED_CASES = [
    ("weekend", BERLIN, t(2026, 3, 6, 16, off=1), t(2026, 3, 9, 10, off=1), 2 * H),
    ("all closed", BERLIN, t(2026, 3, 7, 0, off=1), t(2026, 3, 9, 0, off=1), 0),
    ("reversed", BERLIN, t(2026, 3, 9, 10, off=1), t(2026, 3, 6, 16, off=1), 0),
    ("same instant", BERLIN, t(2026, 3, 9, 10, off=1), t(2026, 3, 9, 10, off=1), 0),
    # A whole week: 5 x 8 h.
    ("one week", BERLIN, t(2026, 3, 9, 0, off=1), t(2026, 3, 16, 0, off=1), 40 * H),
    # Mon 2024-01-01 to Mon 2026-12-28 is 156 weeks of 40 h, less the Friday 25 Dec 2026.
    ("three years", BERLIN, t(2024, 1, 1, off=1), t(2026, 12, 28, off=1), (156 * 40 - 8) * H),
    # The same instants, given in UTC (Sat 7 Mar 2026 00:00 CET = Fri 23:00Z).
    ("UTC in", BERLIN, t(2026, 3, 6, 15), t(2026, 3, 6, 23), H),
    ("lunch", LUNCH, t(2026, 3, 3, 8, off=1), t(2026, 3, 3, 18, off=1), 7 * H),
    ("0-24 spring day", BERLIN_0_24, t(2026, 3, 29, off=1), t(2026, 3, 30, off=2), 23 * H),
    ("0-24 fall day", BERLIN_0_24, t(2026, 10, 25, off=2), t(2026, 10, 26, off=1), 25 * H),
    ("no hours spring", BERLIN_OPEN, t(2026, 3, 29, off=1), t(2026, 3, 30, off=2), 23 * H),
    ("7-day spring day", BERLIN_7, t(2026, 3, 29, off=1), t(2026, 3, 30, off=2), 8 * H),
    ("7-day fall day", BERLIN_7, t(2026, 10, 25, off=2), t(2026, 10, 26, off=1), 8 * H),
    ("skipped hour", BERLIN_GAP, t(2026, 3, 29, off=1), t(2026, 3, 30, off=2), 0),
    ("doubled hour", BERLIN_GAP, t(2026, 10, 25, off=2), t(2026, 10, 26, off=1), 2 * H),
    # Sat 17 Oct 24 h + Sun 18 Oct 23 h.
    ("SP 0-24", SAO_PAULO_0_24, t(2015, 10, 17, off=-3), t(2015, 10, 19, off=-2), 47 * H),
    # 09:30-17:30 IST is 04:00Z-12:00Z, inside this UTC day.
    ("Kolkata UTC day", KOLKATA, t(2026, 3, 2), t(2026, 3, 2, 23, 59), 8 * H),
    # Wed 8 h + Thu 4 h + Fri closed.
    ("Tehran Wed-Fri", TEHRAN, t(2026, 3, 4, off=3.5), t(2026, 3, 7, off=3.5), 12 * H),
    # Mon 30 Mar to Mon 13 Apr: 10 weekdays less Good Friday and Easter Monday.
    ("Easter DE-BE", BERLIN_BE, t(2026, 3, 30, off=2), t(2026, 4, 13, off=2), 64 * H),
    # 01:00+01 is 00:00Z, 05:00+02 is 03:00Z.
    ("24x7", ALWAYS, t(2026, 3, 29, 1, off=1), t(2026, 3, 29, 5, off=2), 3 * H),
    # Always open but 29 Mar is a holiday: only Saturday's 24 h count.
    (
        "open but holiday",
        cal("Europe/Berlin", holidays=["2026-03-29"]),
        t(2026, 3, 28, off=1),
        t(2026, 3, 30, off=2),
        24 * H,
    ),
]


@pytest.mark.parametrize(
    ("calendar", "start", "end", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ELAPSED_CASES],
)
def test_elapsed(
    calendar: BusinessCalendar, start: datetime, end: datetime, expected: float
) -> None:
    got = calendar.elapsed(start, end)
    assert isinstance(got, float)
    assert got == expected


NEXT_OPEN_CASES = [
    ("weekend", BERLIN, t(2026, 3, 7, 12, off=1), t(2026, 3, 9, 9, off=1)),
    ("at opening", BERLIN, t(2026, 3, 9, 9, off=1), t(2026, 3, 9, 9, off=1)),
    ("inside", BERLIN, t(2026, 3, 10, 10, off=1), t(2026, 3, 10, 10, off=1)),
    # Closing is not open: Fri 17:00 -> Mon 09:00.
    ("at closing", BERLIN, t(2026, 3, 6, 17, off=1), t(2026, 3, 9, 9, off=1)),
    ("holiday", BERLIN, t(2026, 12, 25, 8, off=1), t(2026, 12, 28, 9, off=1)),
    ("lunch", LUNCH, t(2026, 3, 3, 12, 30, off=1), t(2026, 3, 3, 13, off=1)),
    # Sun 02:00-03:00 does not exist on 29 Mar: the next opening is Mon 09:00 CEST.
    ("skipped hour", BERLIN_GAP, t(2026, 3, 28, 12, off=1), t(2026, 3, 30, 9, off=2)),
    # 02:30 in the gap, read with fold=0 at +01: 01:30Z = 03:30 CEST.
    ("opens in gap", BERLIN_IN_GAP, t(2026, 3, 28, 12, off=1), t(2026, 3, 29, 3, 30, off=2)),
    ("24x7", ALWAYS, t(2026, 3, 29, 2, off=2), t(2026, 3, 29, 0)),
]


@pytest.mark.parametrize(
    ("calendar", "at", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in NEXT_OPEN_CASES],
)
def test_next_open(calendar: BusinessCalendar, at: datetime, expected: datetime) -> None:
    got = calendar.next_open(at)
    assert got == expected
    assert got.tzinfo is calendar.timezone
    assert calendar.is_open(got)
    assert calendar.is_open(at) == (at == expected)


def test_is_open_inside_the_repeated_hour_of_a_dst_change() -> None:
    # 2026-10-25 00:30Z is 02:30 CEST, the first pass through Berlin's repeated hour.
    berlin_24x7 = BusinessCalendar.from_dict({"timezone": "Europe/Berlin", "hours": "24x7"})
    for minutes in (30, 90):  # the first and the second 02:30
        assert berlin_24x7.is_open(
            datetime(2026, 10, 25, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        )


def test_add_zero_is_start_even_when_closed() -> None:
    start = t(2026, 3, 7, 12, off=1)  # a Saturday
    assert BERLIN.add(start, 0) == start
    assert BERLIN.add(start, 0.0) == start


def test_ambiguous_wall_time_in_the_calendar_zone_respects_fold() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=0)  # 00:30Z
    second = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1)  # 01:30Z
    assert BERLIN_0_24.elapsed(first, second) == H


def test_timezone_attribute() -> None:
    assert BERLIN.timezone == ZoneInfo("Europe/Berlin")
    assert ALWAYS.timezone == ZoneInfo("UTC")


@pytest.mark.parametrize("call", ["add", "elapsed", "next_open"])
def test_naive_input_is_refused(call: str) -> None:
    naive = datetime(2026, 3, 6, 16)
    args = {"add": (naive, H), "elapsed": (naive, t(2026, 3, 9)), "next_open": (naive,)}[call]
    with pytest.raises(ValueError, match="naive"):
        getattr(BERLIN, call)(*args)


@pytest.mark.parametrize("seconds", [-1, -1e-6, float("nan"), float("inf"), "60", True])
def test_bad_duration_is_refused(seconds: Any) -> None:
    with pytest.raises(ValueError):
        BERLIN.add(t(2026, 3, 9, 10, off=1), seconds)


def test_timedelta_duration() -> None:
    start = t(2026, 3, 6, 16, off=1)
    assert BERLIN.add(start, timedelta(hours=2)) == t(2026, 3, 9, 10, off=1)  # type: ignore[arg-type]


# -- date exceptions: Mon-Fri 08-18 Berlin, holiday Fri 25 Dec 2026; 24 Dec (Thu) closes at 12:00,
# Sat 5 Dec opens 09-13, Sat 2 Jan 2027 opens 08-10 and 11:30-18 (closed for an all-hands
# 10:00-11:30), Tue 29 Dec closed, Sun 29 Mar 2026 (the spring-forward day) opens 01:00-05:00.
EXCEPTIONS = cal(
    "Europe/Berlin",
    days([["08:00", "18:00"]]),
    holidays=["2026-12-25"],
    dates={
        "2026-12-24": [["08:00", "12:00"]],
        "2026-12-05": [["09:00", "13:00"]],
        "2027-01-02": [["08:00", "10:00"], ["11:30", "18:00"]],
        "2026-12-29": [],
        "2026-12-25": [["08:00", "18:00"]],  # a holiday still closes it
        "2026-03-29": [["01:00", "05:00"]],
    },
)
EXCEPTION_CASES = [
    # Thu 24 Dec 10:00 +01: 2 h to 12:00; Fri 25 holiday; weekend; Mon 28 08:00 + 1 h.
    ("closes early", t(2026, 12, 24, 10, off=1), 3 * H, t(2026, 12, 28, 9, off=1)),
    # A deadline on the early closing is that closing: 24 Dec 12:00.
    ("lands on early close", t(2026, 12, 24, 10, off=1), 2 * H, t(2026, 12, 24, 12, off=1)),
    # Fri 4 Dec 17:00: 1 h to 18:00; Sat 5 Dec 09:00 + 2 h = 11:00.
    ("extra Saturday", t(2026, 12, 4, 17, off=1), 3 * H, t(2026, 12, 5, 11, off=1)),
    # Sat 5 Dec: 4 h; Sun closed; Mon 7 Dec 08:00 + 1 h.
    ("past extra Saturday", t(2026, 12, 5, 9, off=1), 5 * H, t(2026, 12, 7, 9, off=1)),
    # Mon 28 Dec 17:00: 1 h; Tue 29 closed; Wed 30 08:00 + 1 h = 09:00.
    ("closed weekday", t(2026, 12, 28, 17, off=1), 2 * H, t(2026, 12, 30, 9, off=1)),
    # Sat 2 Jan 09:00: 1 h to 10:00, closed to 11:30, then 1 h = 12:30.
    ("all-hands gap", t(2027, 1, 2, 9, off=1), 2 * H, t(2027, 1, 2, 12, 30, off=1)),
    # Spring-forward Sunday 01:00-05:00 +01/+02: 02:00-03:00 does not exist, so the range is
    # 01:00 +01 (00:00Z) to 05:00 +02 (03:00Z) = 3 h; from 01:00, 2.5 h end at 04:30 +02.
    ("exception on a DST day", t(2026, 3, 29, 1, off=1), 2.5 * H, t(2026, 3, 29, 4, 30, off=2)),
    # ... and 3 h + 1 h more land on Mon 30 Mar 09:00 +02.
    ("across a DST exception", t(2026, 3, 29, 1, off=1), 4 * H, t(2026, 3, 30, 9, off=2)),
]


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in EXCEPTION_CASES],
)
def test_add_with_date_exceptions(start: datetime, seconds: float, expected: datetime) -> None:
    got = EXCEPTIONS.add(start, seconds)
    assert got.astimezone(UTC) == expected.astimezone(UTC)
    assert EXCEPTIONS.elapsed(start, got) == seconds


def test_elapsed_over_a_week_of_exceptions() -> None:
    # Mon 21 Dec 00:00 to Mon 4 Jan 00:00 (+01): Mon-Wed 21-23 Dec 3 x 10 h, Thu 24 4 h, Fri 25
    # holiday, Mon 28 10 h, Tue 29 closed, Wed 30 and Thu 31 10 h each, Fri 1 Jan 10 h (not a
    # holiday here), Sat 2 Jan 2 h + 6.5 h: 30 + 4 + 10 + 20 + 10 + 8.5 = 82.5 h.
    got = EXCEPTIONS.elapsed(t(2026, 12, 21, 0, off=1), t(2027, 1, 4, 0, off=1))
    assert got == 82.5 * H
    # The same span without exceptions: 9 weekdays x 10 h (25 Dec a holiday) = 90 h.
    plain = cal("Europe/Berlin", days([["08:00", "18:00"]]), holidays=["2026-12-25"])
    assert plain.elapsed(t(2026, 12, 21, 0, off=1), t(2027, 1, 4, 0, off=1)) == 90 * H


def test_exception_dates_accept_yaml_dates_and_the_block_without_dates_is_unchanged() -> None:
    as_dates = cal(
        "UTC", days([["09:00", "17:00"]]), dates={date(2026, 12, 24): [["09:00", "12:00"]]}
    )
    assert as_dates.elapsed(t(2026, 12, 24, 0), t(2026, 12, 25, 0)) == 3 * H
    empty = cal("UTC", days([["09:00", "17:00"]]), dates={})
    assert empty.elapsed(t(2026, 12, 24, 0), t(2026, 12, 25, 0)) == 8 * H


INVALID_CASES = [
    ("dates not a mapping", {"timezone": "UTC", "dates": ["2026-12-24"]}, "dates", ["2026-12-24"]),
    (
        "bad date",
        {"timezone": "UTC", "dates": {"2026-02-30": []}},
        "dates.2026-02-30",
        "2026-02-30",
    ),
    ("date not a date", {"timezone": "UTC", "dates": {"24 Dec": []}}, "dates.24 Dec", "24 Dec"),
    (
        "date ranges not a list",
        {"timezone": "UTC", "dates": {"2026-12-24": "08:00-12:00"}},
        "dates.2026-12-24",
        "08:00-12:00",
    ),
    (
        "date range backwards",
        {"timezone": "UTC", "dates": {"2026-12-24": [["12:00", "08:00"]]}},
        "dates.2026-12-24[0]",
        ["12:00", "08:00"],
    ),
    (
        "date ranges overlap",
        {"timezone": "UTC", "dates": {"2027-01-02": [["08:00", "10:00"], ["09:00", "18:00"]]}},
        "dates.2027-01-02[1]",
        ["09:00", "18:00"],
    ),
    (
        "date bad time",
        {"timezone": "UTC", "dates": {"2026-12-24": [["08:00", "12:61"]]}},
        "dates.2026-12-24[0]",
        ["08:00", "12:61"],
    ),
    ("unknown zone", {"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
    ("zone not a string", {"timezone": 1}, "timezone", 1),
    ("no zone", {"hours": {"mon": [["09:00", "17:00"]]}}, "timezone", None),
    ("not a block", 42, "", 42),
    ("unknown key", {"timezone": "UTC", "holiday": []}, "holiday", "holiday"),
    ("unknown weekday", {"timezone": "UTC", "hours": {"monday": []}}, "hours.monday", "monday"),
    (
        "end before start",
        {"timezone": "UTC", "hours": {"tue": [["09:00", "12:00"], ["13:00", "12:30"]]}},
        "hours.tue[1]",
        ["13:00", "12:30"],
    ),
    (
        "overlap",
        {"timezone": "UTC", "hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}},
        "hours.mon[1]",
        ["11:00", "13:00"],
    ),
    (
        "overlap out of order",
        {"timezone": "UTC", "hours": {"mon": [["11:00", "13:00"], ["09:00", "12:00"]]}},
        "hours.mon[0]",
        ["11:00", "13:00"],
    ),
    (
        "no such hour",
        {"timezone": "UTC", "hours": {"wed": [["09:00", "25:00"]]}},
        "hours.wed[0]",
        ["09:00", "25:00"],
    ),
    (
        "24:00 start",
        {"timezone": "UTC", "hours": {"wed": [["24:00", "24:00"]]}},
        "hours.wed[0]",
        ["24:00", "24:00"],
    ),
    (
        "24:30",
        {"timezone": "UTC", "hours": {"wed": [["09:00", "24:30"]]}},
        "hours.wed[0]",
        ["09:00", "24:30"],
    ),
    (
        "bad time",
        {"timezone": "UTC", "hours": {"wed": [["9am", "17:00"]]}},
        "hours.wed[0]",
        ["9am", "17:00"],
    ),
    ("not a pair", {"timezone": "UTC", "hours": {"wed": [["09:00"]]}}, "hours.wed[0]", ["09:00"]),
    ("day not a list", {"timezone": "UTC", "hours": {"wed": "09-17"}}, "hours.wed", "09-17"),
    ("never open", {"timezone": "UTC", "hours": {"sat": []}}, "hours", {"sat": []}),
    (
        "bad date",
        {"timezone": "UTC", "holidays": ["2026-12-25", "2026-12-26", "2026-02-30"]},
        "holidays[2]",
        "2026-02-30",
    ),
    ("date format", {"timezone": "UTC", "holidays": ["25.12.2026"]}, "holidays[0]", "25.12.2026"),
    (
        "datetime holiday",
        {"timezone": "UTC", "holidays": [datetime(2026, 12, 25, tzinfo=UTC)]},
        "holidays[0]",
        datetime(2026, 12, 25, tzinfo=UTC),
    ),
    (
        "unknown country",
        {"timezone": "UTC", "country_holidays": {"country": "XX"}},
        "country_holidays.country",
        "XX",
    ),
    (
        "unknown subdivision",
        {"timezone": "UTC", "country_holidays": {"country": "DE", "subdiv": "XX"}},
        "country_holidays.subdiv",
        "XX",
    ),
]


@pytest.mark.parametrize(
    ("block", "path", "value"), [pytest.param(*case[1:], id=case[0]) for case in INVALID_CASES]
)
def test_invalid_block_names_path_and_value(block: Any, path: str, value: Any) -> None:
    with pytest.raises(InvalidContract) as err:
        BusinessCalendar.from_dict(block)
    assert err.value.path == path
    assert err.value.value == value
    assert path in str(err.value)


def test_valid_shapes_are_accepted() -> None:
    # Adjacent ranges, an empty weekday, seconds, 24:00, a YAML date object: all fine.
    block = {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": [["09:00", "12:00"], ["12:00", "17:00:30"]],
            "tue": [],
            "sun": [["20:00", "24:00"]],
        },
        "holidays": [date(2026, 12, 25), "2026-12-26"],
        "name": "office",
    }
    calendar = BusinessCalendar.from_dict(block)
    # Mon 9 Mar 09:00-17:00:30 is 8 h 30 s, Sun 15 Mar 20-24 is 4 h.
    assert calendar.elapsed(t(2026, 3, 9, off=1), t(2026, 3, 16, off=1)) == 8 * H + 30 + 4 * H
    assert (
        BusinessCalendar.from_dict({"timezone": "UTC", "hours": "24x7"}).elapsed(
            t(2026, 1, 1), t(2026, 1, 2)
        )
        == 24 * H
    )


def test_calendar_for_caches_on_canonical_json() -> None:
    block = {"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}}
    same = {"hours": {"mon": [("09:00", "17:00")]}, "timezone": "Europe/Berlin"}
    assert calendar_for(block) is calendar_for(same)
    assert calendar_for("24x7") is calendar_for("24x7")
    assert calendar_for(block) is not calendar_for({**block, "holidays": ["2026-12-25"]})
    with_date = calendar_for({**block, "holidays": [date(2026, 12, 21)]})
    assert with_date is calendar_for({**block, "holidays": ["2026-12-21"]})
    # Mon 21 Dec is a holiday: Mon 09:00 + 1 h -> Mon 28 Dec 10:00.
    assert with_date.add(t(2026, 12, 21, 9, off=1), H) == t(2026, 12, 28, 10, off=1)


def test_calendar_for_refuses_what_from_dict_refuses() -> None:
    with pytest.raises(InvalidContract):
        calendar_for({"timezone": "Mars/Olympus"})
    with pytest.raises(InvalidContract):
        calendar_for({"timezone": "UTC", "holidays": [object()]})
