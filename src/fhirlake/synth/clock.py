"""Time for the generator: integer seconds since the Unix epoch, printed in one fixed offset.

The generator never reads the wall clock. "Today" is the ``as_of`` instant given by the
caller (a constant by default), so a seed always gives the same bytes. Times are kept as
plain ints while simulating and only formatted when a resource is built; formatting goes
through a naive ``datetime`` plus a fixed offset suffix, which is several times faster than
``astimezone`` and is what a FHIR ``dateTime`` needs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

__all__ = ["DAY", "DEFAULT_AS_OF", "YEAR", "Clock", "parse_as_of"]

DAY = 86_400
YEAR = 31_556_952  # mean Gregorian year, in seconds

#: The default "today" of generated data: fixed, so output is reproducible.
DEFAULT_AS_OF = datetime(2025, 6, 30, 12, 0, 0, tzinfo=UTC)

_NAIVE_EPOCH = datetime(1970, 1, 1)


class Clock:
    """Formats epoch seconds as FHIR date, dateTime and instant in one UTC offset."""

    __slots__ = ("_offset", "_suffix")

    def __init__(self, offset_minutes: int) -> None:
        self._offset = offset_minutes * 60
        sign = "+" if offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(offset_minutes), 60)
        self._suffix = f"{sign}{hours:02d}:{minutes:02d}"

    def _local(self, ts: int) -> datetime:
        return _NAIVE_EPOCH + timedelta(seconds=ts + self._offset)

    def datetime(self, ts: int) -> str:
        """``2016-08-18T23:51:40-05:00`` (a FHIR dateTime, seconds precision)."""
        return self._local(ts).isoformat(timespec="seconds") + self._suffix

    def instant(self, ts: int, millis: int = 0) -> str:
        """``2016-08-18T23:51:40.190-05:00`` (a FHIR instant, milliseconds precision)."""
        return f"{self._local(ts).isoformat(timespec='seconds')}.{millis:03d}{self._suffix}"

    def date(self, ts: int) -> date:
        """The local calendar date of ``ts``."""
        return self._local(ts).date()


def parse_as_of(value: str | date | datetime | None) -> int:
    """The ``as_of`` instant as epoch seconds; a bare date means noon UTC that day."""
    if value is None:
        return int(DEFAULT_AS_OF.timestamp())
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, 12, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())
