"""The end of a 公示期 counted in Chinese working days (pure functions; the job is in
:mod:`publisher.pipeline.workflow.display`).

The rule (docs/privacy.md, "The 公示期 that ends by itself"): the day the item goes live is day 1
if it is a working day, else the next working day is day 1; the period ends at 24:00, office time,
of the N-th working day — that is, at 00:00 of the next calendar day. It never ends earlier: a
take-down before the 公示期 is over breaks the rule the notice itself announced.

Working days are the State Council's: public holidays off, the weekend days worked instead (调休) on.
``chinese-calendar`` knows the years it ships (2004-2026 in 1.11); the office may list later years
in settings (``[calendar] holidays``, ``workdays``). A count that reaches a year known to neither
raises :class:`UnknownYear` — never a Monday-to-Friday guess, which would take a 公示 down during
a holiday week's make-up days too early or too late.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from publisher.errors import InvalidInput

#: the most working days a period may have (the settings and the item fields are checked against it)
MAX_WORKING_DAYS = 60


class UnknownYear(InvalidInput):
    """The working-day calendar does not know a year the period reaches."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"the holiday calendar does not know {year}: list that year's holidays and 调休 workdays in "
            f"settings.toml ([calendar] holidays = [...], workdays = [...], from the State Council's notice), "
            "or upgrade chinese-calendar (pip install -U chinese-calendar), or give display_until instead"
        )


@dataclass(frozen=True)
class WorkCalendar:
    """Chinese working days: the office's own lists first (``[calendar]``), then chinese-calendar."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(frozenset(holidays), frozenset(workdays))

    @property
    def listed_years(self) -> frozenset[int]:
        """Years the office listed days of: the library's silence on them is not a gap."""
        return frozenset(d.year for d in self.holidays | self.workdays)

    def is_workday(self, day: date) -> bool:
        """Raises :class:`UnknownYear` for a year neither the settings nor chinese-calendar know."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year in self.listed_years:
                return day.weekday() < 5
            raise UnknownYear(day.year) from None


def last_working_day(start: date, working_days: int, calendar: WorkCalendar) -> date:
    """The N-th working day counted from ``start`` (``start`` is day 1 when it is a working day)."""
    if not 1 <= working_days <= MAX_WORKING_DAYS:
        raise InvalidInput(f"display_working_days {working_days}: give 1 to {MAX_WORKING_DAYS} working days")
    day = start
    while not calendar.is_workday(day):
        day += timedelta(days=1)
    left = working_days - 1
    while left:
        day += timedelta(days=1)
        if calendar.is_workday(day):
            left -= 1
    return day


def display_end(live_at: datetime, working_days: int, *, zone: ZoneInfo, calendar: WorkCalendar) -> datetime:
    """When a period of ``working_days`` Chinese working days from ``live_at`` ends: 24:00 (office time,
    ``zone``) of the last working day, returned in UTC. Raises :class:`UnknownYear`."""
    if live_at.tzinfo is None:
        raise ValueError("live_at must be time-zone aware")
    last = last_working_day(live_at.astimezone(zone).date(), working_days, calendar)
    return datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
