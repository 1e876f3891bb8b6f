"""The end of a 公示期 in Chinese working days (publisher.pipeline.display): the rule, the years the
holiday calendar does not know, and a property over random publish times and lengths."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.errors import InvalidInput
from publisher.pipeline.display import UnknownYear, WorkCalendar, display_end, last_working_day

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def test_national_day_2026_five_working_days() -> None:
    # 9-29, 9-30, then 10-01..10-07 off, 10-08, 10-09, 10-10 (a Saturday worked, 调休)
    assert [chinese_calendar.is_workday(date(2026, 10, d)) for d in (7, 8, 10, 11)] == [False, True, True, False]
    end = display_end(datetime(2026, 9, 29, 10, 0, tzinfo=SH), 5, zone=SH, calendar=CAL)
    assert end == datetime(2026, 10, 11, 0, 0, tzinfo=SH)
    assert end.tzinfo is UTC


def test_published_on_a_holiday_counts_from_the_next_working_day() -> None:
    # 10-01 is off: day 1 is 10-08; 10-08, 10-09, 10-10, 10-12, 10-13
    end = display_end(datetime(2026, 10, 1, 9, 0, tzinfo=SH), 5, zone=SH, calendar=CAL)
    assert end == datetime(2026, 10, 14, 0, 0, tzinfo=SH)


def test_the_day_is_the_office_zones_day_not_utcs() -> None:
    # 2026-09-30 17:00 UTC is 10-01 01:00 in Shanghai, a holiday: counted from 10-08
    live = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)
    assert display_end(live, 1, zone=SH, calendar=CAL) == datetime(2026, 10, 9, 0, 0, tzinfo=SH)


def test_a_year_nobody_knows_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownYear) as exc:
        display_end(datetime(2026, 12, 28, 9, 0, tzinfo=SH), 10, zone=SH, calendar=CAL)
    assert exc.value.year == 2027
    assert "[calendar]" in str(exc.value) and "chinese-calendar" in str(exc.value)
    assert "display_until" in str(exc.value)


def test_the_offices_lists_cover_a_year_the_library_does_not_know() -> None:
    # the office lists 2027's 元旦 off (Friday) and a Saturday worked
    cal = WorkCalendar.of(holidays=[date(2027, 1, 1)], workdays=[date(2027, 1, 9)])
    # 12-28..12-31 (4 days, 2026 from the library), 01-01 off, 01-04 is day 5
    assert last_working_day(date(2026, 12, 28), 5, cal) == date(2027, 1, 4)
    assert last_working_day(date(2027, 1, 8), 2, cal) == date(2027, 1, 9)  # the 调休 Saturday counts


@pytest.mark.parametrize("n", [0, 61])
def test_length_outside_1_to_60_is_refused(n: int) -> None:
    with pytest.raises(InvalidInput):
        last_working_day(date(2026, 3, 2), n, CAL)


def _workday(d: date) -> bool:
    return bool(chinese_calendar.is_workday(d))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2004, 1, 1), max_value=datetime(2026, 8, 31)),
    st.integers(min_value=1, max_value=60),
)
def test_the_end_is_never_before_n_working_days_and_falls_at_a_working_days_midnight(naive: datetime, n: int) -> None:
    live = naive.replace(tzinfo=SH)
    end = display_end(live, n, zone=SH, calendar=CAL).astimezone(SH)
    assert end.time() == time(0) and end > live
    last = end.date() - timedelta(days=1)
    assert _workday(last)  # 24:00 of a working day
    # exactly n working days from the publish day (counted) to the end (by another way of counting)
    days = [live.date() + timedelta(days=k) for k in range((end.date() - live.date()).days)]
    assert sum(map(_workday, days)) == n
    # and not one day later than needed: the day before the last is short of n
    assert sum(map(_workday, days[:-1])) == n - 1
