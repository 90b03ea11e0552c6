"""Date shifting and date generalisation that keep intervals and precision.

Every date of a patient's compartment moves by the same number of days (derived from the key
and the patient id, see :meth:`PseudonymKey.day_offset`), so a length of stay or an age at
diagnosis is the same before and after. Only the calendar date moves; the time of day and the
zone offset are kept, so intervals within a day are exact too.

A partial date keeps its precision: ``2003-06`` is shifted as its 15th day and written back as
a year-month, ``2003`` as its 2nd of July and written back as a year.

>>> shift_date("2003-06-12T12:26:53-07:00", 10)
'2003-06-22T12:26:53-07:00'
>>> shift_date("2003-06", -20)
'2003-05'
>>> generalize_date("1969-03-27", 0, "year")
'1969'
"""

from __future__ import annotations

import datetime as dt
import functools
import re

__all__ = ["age_in_years", "generalize_date", "parse_date", "shift_date"]

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_TIME = re.compile(
    r"T(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d{1,9})?)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?$"
)


def parse_date(value: str) -> tuple[dt.date, int, str]:
    """Split a FHIR date/dateTime/instant into (anchor date, precision 1-3, time suffix).

    The anchor of a partial date is a day in the middle of its period. Raises ``ValueError``
    when the value is not a FHIR date or dateTime.
    """
    date_part, sep, time_part = value.partition("T")
    m = _DATE.match(date_part)
    if not m or (sep and (m[3] is None or not _TIME.match(sep + time_part))):
        raise ValueError("not a FHIR date or dateTime")
    year = int(m[1])
    if m[3] is not None:
        return dt.date(year, int(m[2]), int(m[3])), 3, sep + time_part
    if m[2] is not None:
        return dt.date(year, int(m[2]), 15), 2, ""
    return dt.date(year, 7, 2), 1, ""


def _format(day: dt.date, precision: int) -> str:
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return text[: {1: 4, 2: 7, 3: 10}[precision]]


@functools.lru_cache(maxsize=1 << 16)
def _shift_day(date_part: str, days: int) -> str:
    day, precision, _ = parse_date(date_part)
    return _format(day + dt.timedelta(days=days), precision)


def shift_date(value: str, days: int) -> str:
    """``value`` moved by ``days`` days, with the same precision, time of day and zone."""
    if len(value) > 10:  # a dateTime: validate the time here, the date in _shift_day
        if value[10] != "T" or not _TIME.match(value, 10):
            raise ValueError("not a FHIR date or dateTime")
        return _shift_day(value[:10], days) + value[10:]
    return _shift_day(value, days)


def generalize_date(value: str, days: int, to: str) -> str:
    """``value`` shifted by ``days`` then cut to ``to`` ('year' or 'month', never finer).

    Shifting first keeps the generalised date consistent with the patient's other dates.
    """
    day, precision, _ = parse_date(value)
    wanted = {"year": 1, "month": 2}[to]
    return _format(day + dt.timedelta(days=days), min(precision, wanted))


def age_in_years(birth: str, on: dt.date) -> int:
    """Completed years between a FHIR birth date (possibly partial) and ``on``."""
    born, _, _ = parse_date(birth)
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
