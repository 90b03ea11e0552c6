"""Date formats of the corpus: how each is written, and what a correct shift of it looks like.

A format id names one way of writing a calendar date. The same id is used for every language
that writes it (``dmy_slash`` is French and British, ``mdy_slash`` American); written formats
take the month and weekday names of the note's language. :func:`render` writes a date,
:func:`shifted_renderings` gives every string a correct de-identifier may write instead of a
date once the patient's offset is applied (a partial date such as ``avril 2024`` may land in
one of two months; a French day 1 is ``1er`` or ``1``; a date whose text is the same in two
formats, such as ``30 juin 2023``, may come back in either).
"""

from __future__ import annotations

import datetime as dt

FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre")
FR_MONTHS_ABBR = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                  "oct.", "nov.", "déc.")
FR_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
EN_MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")
EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

NUMERIC = ("dmy_slash", "dmy_slash_short", "mdy_slash", "mdy_slash_short", "iso")
"""Formats written with digits only."""

PARTIAL = ("dm_no_year", "md_no_year", "month_year")
"""Formats that do not hold a whole calendar date (no year, or no day)."""

FORMATS: dict[str, tuple[str, ...]] = {
    # every format a note of the locale may use for an ordinary (non-birth) date
    "fr_FR": ("dmy_slash", "dmy_slash_short", "iso", "weekday_dmy", "dmy_long", "dmy_abbr",
              "dm_no_year", "month_year"),
    "en_US": ("mdy_slash", "mdy_slash_short", "iso", "weekday_mdy", "mdy_long", "mdy_abbr",
              "mdy_ordinal", "dmy_abbr", "md_no_year", "month_year"),
    "en_GB": ("dmy_slash", "dmy_slash_short", "iso", "weekday_dmy", "dmy_long", "dmy_abbr",
              "mdy_abbr", "mdy_ordinal", "dm_no_year", "month_year"),
}

BIRTH_FORMATS: dict[str, tuple[str, ...]] = {
    "fr_FR": ("dmy_slash", "dmy_long", "iso", "weekday_dmy"),
    "en_US": ("mdy_slash", "mdy_long", "iso", "mdy_ordinal", "dmy_abbr"),
    "en_GB": ("dmy_slash", "dmy_long", "iso", "mdy_ordinal", "dmy_abbr"),
}


ALL_FORMATS = tuple(dict.fromkeys(f for fs in FORMATS.values() for f in fs))


def language_of(locale: str) -> str:
    return locale.split("_", 1)[0]


def is_written(fmt: str) -> bool:
    """True for a format with a month (or weekday) in words."""
    return fmt not in NUMERIC


def _day(day: int, lang: str, first_as_ordinal: bool = True) -> str:
    if lang == "fr" and day == 1 and first_as_ordinal:
        return "1er"
    return str(day)


def _ordinal_en(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def render(date: dt.date, fmt: str, lang: str, *, first_as_ordinal: bool = True) -> str:
    """``date`` written in format ``fmt`` in language ``lang`` (``fr`` or ``en``)."""
    months = FR_MONTHS if lang == "fr" else EN_MONTHS
    abbr = FR_MONTHS_ABBR if lang == "fr" else EN_MONTHS_ABBR
    weekdays = FR_WEEKDAYS if lang == "fr" else EN_WEEKDAYS
    d, m, y = date.day, date.month, date.year
    day = _day(d, lang, first_as_ordinal)
    month = months[m - 1]
    match fmt:
        case "dmy_slash":
            return f"{d:02d}/{m:02d}/{y}"
        case "dmy_slash_short":
            return f"{d}/{m}/{y % 100:02d}"
        case "mdy_slash":
            return f"{m:02d}/{d:02d}/{y}"
        case "mdy_slash_short":
            return f"{m}/{d}/{y % 100:02d}"
        case "iso":
            return date.isoformat()
        case "weekday_dmy":
            return f"{weekdays[date.weekday()]} {day} {month} {y}"
        case "weekday_mdy":
            return f"{weekdays[date.weekday()]}, {month} {d}, {y}"
        case "dmy_long":
            return f"{day} {month} {y}"
        case "mdy_long":
            return f"{month} {d}, {y}"
        case "dmy_abbr":
            return f"{day} {abbr[m - 1]} {y}"
        case "mdy_abbr":
            return f"{abbr[m - 1]} {d}, {y}"
        case "mdy_ordinal":
            return f"{month} {_ordinal_en(d)}, {y}"
        case "dm_no_year":
            return f"{day} {month}"
        case "md_no_year":
            return f"{month} {d}"
        case "month_year":
            return f"{month} {y}"
    raise ValueError(f"unknown date format {fmt!r}")


def shifted_renderings(date: dt.date, fmt: str, lang: str, offset_days: int) -> set[str]:
    """Every string a correct shift of ``date`` (written as ``fmt``) by ``offset_days`` may be.

    Whole dates have one answer (two for a French 1st: ``1er`` or ``1``). A date without a
    year is placed in its own year or the one before or after (the de-identifier may infer
    the year differently; only 29 February can change the answer). A month and year may land
    in the month of its first or its last day once shifted.
    """
    written = render(date, fmt, lang)
    twins = {f for f in ALL_FORMATS if f != fmt and render(date, f, lang) == written}
    out: set[str] = set()
    for twin in twins:  # "30 juin 2023" is both dmy_long and dmy_abbr: either is the same format
        out |= _shifted(date, twin, lang, offset_days)
    return out | _shifted(date, fmt, lang, offset_days)


def _shifted(date: dt.date, fmt: str, lang: str, offset_days: int) -> set[str]:
    delta = dt.timedelta(days=offset_days)
    if fmt == "month_year":  # any day of the month may be the one the de-identifier shifts
        first = date.replace(day=1)
        days = ((first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - first).days
        return {render(first + dt.timedelta(days=i) + delta, fmt, lang) for i in range(days)}
    candidates = [date]
    if fmt in ("dm_no_year", "md_no_year"):
        candidates = []
        for year in (date.year - 1, date.year, date.year + 1):
            try:
                candidates.append(date.replace(year=year))
            except ValueError:
                continue
    out: set[str] = set()
    for candidate in candidates:
        shifted = candidate + delta
        out.add(render(shifted, fmt, lang))
        out.add(render(shifted, fmt, lang, first_as_ordinal=False))
    return out
