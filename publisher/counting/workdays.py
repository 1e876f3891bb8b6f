"""Chinese working days: public holidays off, make-up working days (调休) on.

Deadlines in disclosure law are counted in working days (15 for a request, 20 for timeliness). The
``chinese-calendar`` package knows the State Council's holiday notices for the years it ships; a
date outside them falls back to Monday–Friday, and every function says whether it had to, so the
CLI can print "counted Mon-Fri for 2027: the holiday calendar does not cover it yet".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar


@dataclass
class Calendar:
    """Answers "is this a working day?" and remembers the years it had to guess (Mon–Fri)."""

    fallback_years: set[int] = field(default_factory=set)

    def is_workday(self, d: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:
            self.fallback_years.add(d.year)
            return d.weekday() < 5

    def add(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
        d = start
        left = days
        while left > 0:
            d += timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        return d

    def between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
        n = 0
        d = start
        while d < end:
            d += timedelta(days=1)
            if self.is_workday(d):
                n += 1
        return n

    @property
    def note(self) -> str:
        """A sentence for the user when the fallback was used, else ''."""
        if not self.fallback_years:
            return ""
        years = ", ".join(str(y) for y in sorted(self.fallback_years))
        return (
            f"working days in {years} were counted Monday-Friday: the installed chinese-calendar "
            "does not know that year's holidays (upgrade it with pip when the State Council publishes them)"
        )
