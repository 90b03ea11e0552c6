"""Dates written in free text, in English and French, moved by the patient's offset in place.

A date in a note must move exactly as the structured dates do, or the pair (raw date in the
note, shifted date beside it) reveals the patient's secret offset, and with it every date.
So every format a clinician writes is found and written back *in the same format*:

* numeric: ``08/04/2024``, ``8/4/24``, ``8.4.2024``, ``2024-04-08`` (with a time or not),
  ``04/2024`` (month and year); day first in French, month first in English (day first when
  the first number cannot be a month);
* written out, with or without a weekday: ``lundi 8 avril 2024``, ``8 avr. 2024``,
  ``le 1er avril``, ``avril 2024``, ``Nov 3, 2023``, ``November 3rd, 2023``, ``3 Nov 2023``,
  ``Monday, 3rd of November 2023``. Month and weekday names keep their language, length,
  case and accents; a weekday is recomputed for the new date.

A date that follows "né(e) le", "born on", "DOB", "date de naissance"…, or that equals the
patient's birth date, keeps only its (shifted) year, as the structured birth date does. A year
alone or a relative date ("il y a 3 jours") cannot be placed and is left alone; a date that
does not exist (``31/02/2024``) becomes ``[DATE_TIME]``.

EDS-NLP (AP-HP) ships a rule-based date component, ``eds.dates``, and it was the first thing
looked at: it is French only, it needs its own spaCy tokenizer pass over every text (we run a
NER pass already and want nothing else on the hot path), and it returns a normalised value,
not the parts of the original string that writing a date back in its own format needs. Its
vocabulary (``1er``, ``janv.``, ``févr.``, weekdays) is covered here.

>>> [d.render(3) for d in find_dates("Vu le lundi 8 avril 2024 et le 12/04/2024.", "fr")]
['jeudi 11 avril 2024', '15/04/2024']
>>> [d.render(-2) for d in find_dates("Seen Nov 3rd, 2023; DOB 04/21/1958.", "en")]
['Nov 1st, 2023', '1958']
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["TextDate", "find_dates", "find_dates_each", "strip_accents"]


def strip_accents(text: str) -> str:
    """``text`` without combining accents (``févr`` → ``fevr``), case kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- vocabulary ------------------------------------------------------------------------------

# (language, full names, abbreviations), months January first and weekdays Monday first
_MONTHS = {
    "en": (
        "January February March April May June July August September October November December",
        "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    ),
    "fr": (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
    ),
}
_EXTRA_MONTH_ABBREVIATIONS = {
    "en": {"sept": 9},
    "fr": {"janv": 1, "fev": 2, "fevr": 2, "fév": 2, "avr": 4, "juil": 7, "sep": 9, "dec": 12},
}
_WEEKDAYS = {
    "en": (
        "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
        "Mon Tue Wed Thu Fri Sat Sun",
    ),
    "fr": (
        "lundi mardi mercredi jeudi vendredi samedi dimanche",
        "lun. mar. mer. jeu. ven. sam. dim.",
    ),
}
_EXTRA_WEEKDAY_ABBREVIATIONS = {"en": {"tues": 1, "thur": 3, "thurs": 3}, "fr": {}}


@dataclass(frozen=True, slots=True)
class _Word:
    """A month or weekday name as written: its number, language and whether it is short."""

    number: int  # month 1-12, or weekday 0-6
    language: str
    short: bool


def _vocabulary(
    table: dict[str, tuple[str, str]], extra: dict[str, dict[str, int]], base: int
) -> dict[str, dict[str, _Word]]:
    """Per language: each name (accents stripped, casefolded, no dot) and what it means."""
    by_language: dict[str, dict[str, _Word]] = {}
    for language, (full, short) in table.items():
        words = by_language.setdefault(language, {})
        for i, word in enumerate(full.split()):
            words[_key(word)] = _Word(i + base, language, False)
        for i, word in enumerate(short.split()):
            words.setdefault(_key(word), _Word(i + base, language, True))
        for word, number in extra[language].items():
            words.setdefault(_key(word), _Word(number, language, True))
    return by_language


def _key(word: str) -> str:
    return strip_accents(word.rstrip(".")).casefold()


_MONTH_WORDS = _vocabulary(_MONTHS, _EXTRA_MONTH_ABBREVIATIONS, 1)
_WEEKDAY_WORDS = _vocabulary(_WEEKDAYS, _EXTRA_WEEKDAY_ABBREVIATIONS, 0)


def _lookup(words: dict[str, dict[str, _Word]], text: str, language: str) -> _Word:
    """The meaning of a name, in the text's language first ("sept." is French in French)."""
    key = _key(text)
    found = words.get(language, {}).get(key)
    if found is None:
        found = next(table[key] for table in words.values() if key in table)
    return found


def _alternation(words: dict[str, dict[str, _Word]], table: dict[str, tuple[str, str]]) -> str:
    forms = {
        w.rstrip(".") for full, short in table.values() for w in (*full.split(), *short.split())
    }
    forms |= {key for by_key in words.values() for key in by_key}
    return "|".join(sorted((re.escape(f) for f in forms), key=len, reverse=True))


_MONTH = rf"(?P<month>(?:{_alternation(_MONTH_WORDS, _MONTHS)})\b\.?)"
_WEEKDAY = rf"(?:(?P<weekday>(?:{_alternation(_WEEKDAY_WORDS, _WEEKDAYS)})\b\.?),?\s+)"
_DAY = r"(?P<day>(?:0?[1-9]|[12]\d|3[01]))(?P<suffix>st|nd|rd|th|er|ère|e)?\b"
_YEAR = r"(?P<year>(?:1[89]|20)\d{2}|'\d{2})\b"
_NOT_IN_NUMBER = r"(?<![\w/.,-])"  # not the tail of a number, a decimal or a phone number

_PATTERNS = [
    # 2024-04-08, 2024-04-08T10:30:00Z, 2024/04/08
    re.compile(
        _NOT_IN_NUMBER
        + r"(?P<year>(?:1[89]|20)\d{2})(?P<sep>[-/.])(?P<month>0[1-9]|1[0-2])(?P=sep)"
        r"(?P<day>0[1-9]|[12]\d|3[01])(?![\d/.-]\d)"
    ),
    # 08/04/2024, 8/4/24, 8.4.2024, 08-04-2024
    re.compile(
        _NOT_IN_NUMBER
        + r"(?P<first>\d{1,2})(?P<sep>[/.-])(?P<second>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
        r"(?![\w/.-]*\d|[.,]\d)"
    ),
    # [lundi] [le] 8 [avril|avr.] [2024], 3rd of November 2023, 3-Nov-2023
    re.compile(
        rf"(?<![\w/.-]){_WEEKDAY}?(?:(?:le|the)\s+)?{_DAY}(?:\s+of)?(?P<s1>\s+|-){_MONTH}"
        rf"(?:,?(?P<s2>\s+|-){_YEAR})?",
        re.IGNORECASE,
    ),
    # [Monday,] Nov 3[rd][, 2023]
    re.compile(
        rf"(?<![\w/.-]){_WEEKDAY}?{_MONTH}\s+(?:the\s+)?{_DAY}(?:(?P<s2>,?\s+){_YEAR}|(?![:\d]))",
        re.IGNORECASE,
    ),
    # avril 2024, Nov. 2023, 04/2024
    re.compile(rf"(?<![\w/.-]){_MONTH},?\s+{_YEAR}", re.IGNORECASE),
    re.compile(
        _NOT_IN_NUMBER + r"(?P<month>0?[1-9]|1[0-2])/(?P<year>(?:1[89]|20)\d{2})(?![\w/.-]*\d)"
    ),
]

# Patterns 2-4 need a month name: a text with none (most structured JSON) skips them, which is
# most of the cost of reading every line of an export (the leak scan does).
_MONTH_PREFIXES = sorted(
    {word[:3].lower() for table in (_MONTHS, _EXTRA_MONTH_ABBREVIATIONS) for forms in table.values()
     for word in (forms if isinstance(forms, dict) else " ".join(forms).split())}
    | {word[:3] for words in _MONTH_WORDS.values() for word in words}
)
# a necessary condition, on the lowercased text: some word starts like a month name
_NAMED_MONTH = re.compile(rf"(?<![^\W\d_])(?:{'|'.join(map(re.escape, _MONTH_PREFIXES))})")
_NEEDS_MONTH_NAME = frozenset({2, 3, 4})

_BIRTH_CONTEXT = re.compile(
    r"(?:\bn[ée]e?s?(?:\s*\(e\))?|\bdate\s+de\s+naissance|\bddn|\bborn|\bdob|\bd\.o\.b\.?"
    r"|\bdate\s+of\s+birth|\bbirth\s*date|\bbirthday|\banniversaire|\bnaissance)"
    r"\W{0,3}(?:\s*(?:le|on|:|en|in|the)\b)?[\s:,-]*$",
    re.IGNORECASE,
)


# --- a found date ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Field:
    """One part of a date as written: where (relative to the date), what, and its name."""

    start: int
    end: int
    kind: str  # day, month, year, weekday
    text: str
    word: _Word | None = None  # for a month or weekday written as a name


@dataclass(slots=True)
class TextDate:
    """A date found in a text: where, what it says, and how to write it moved."""

    start: int
    end: int
    text: str
    day: int | None  # None for a month and year
    month: int
    year: int | None  # None for a day and month
    fields: list[_Field]
    birth: bool = False  # after "né le", "DOB"…: written back as the year alone
    valid: bool = True  # a real calendar date
    assumed_year: int | None = None  # for a day and month: the year of the text's dates

    def value(self) -> dt.date | None:
        """The date it names (the 15th for a month); ``None`` without a year, or invalid."""
        if not self.valid or self.year is None:
            return None
        return dt.date(self.year, self.month, self.day or 15)

    def is_birth_date(self, birth_date: str | None) -> bool:
        """Whether this is a birth date: by its context, or equal to ``birth_date``."""
        if self.birth:
            return True
        value = self.value() if self.day is not None else None
        return birth_date is not None and value is not None and birth_date[:10] == value.isoformat()

    def render(self, offset: int, birth_date: str | None = None) -> str | None:
        """The text moved by ``offset`` days, in the same format; ``None`` if it cannot be.

        A birth date (see :meth:`is_birth_date`) becomes its moved year alone.
        """
        if not self.valid:
            return None
        moved = self._anchor() + dt.timedelta(days=offset)
        if self.year is not None and self.is_birth_date(birth_date):
            return f"{moved.year:04d}"
        out = self.text
        for field in sorted(self.fields, key=lambda f: -f.start):
            out = out[: field.start] + _format_field(field, moved, self.fields) + out[field.end :]
        return out

    def _anchor(self) -> dt.date:
        if self.year is not None:
            return dt.date(self.year, self.month, self.day or 15)
        assert self.day is not None
        weekday = next((f.word for f in self.fields if f.kind == "weekday"), None)
        if weekday is None:
            # the year the text's other dates give, else a common year (2000 for 29 February)
            for year in (self.assumed_year, 2001, 2000):
                if year is not None:
                    try:
                        return dt.date(year, self.month, self.day)
                    except ValueError:
                        continue
            return dt.date(2000, self.month, self.day)
        # the year in which this day was that weekday, so the weekday written back is right
        for year in range(2030, 1990, -1):
            try:
                day = dt.date(year, self.month, self.day)
            except ValueError:
                continue
            if day.weekday() == weekday.number:
                return day
        return dt.date(2000, self.month, self.day)


def _case_like(model: str, new: str) -> str:
    letters = [c for c in model if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return new.upper()
    if letters and letters[0].isupper():
        return new[:1].upper() + new[1:]
    return new.lower()


def _name_like(field: _Field, number: int, table: dict[str, tuple[str, str]]) -> str:
    """The name of ``number`` written like the field (language, length, case, accents, dot)."""
    word = field.word
    assert word is not None
    full, short = (names.split() for names in table[word.language])
    index = number - (1 if table is _MONTHS else 0)
    name = short[index] if word.short else full[index]
    if name.endswith(".") and not field.text.endswith("."):
        name = name[:-1]
    elif field.text.endswith(".") and not name.endswith(".") and name != full[index]:
        name += "."
    canonical = (short if word.short else full)[word.number - (1 if table is _MONTHS else 0)]
    if canonical != strip_accents(canonical) and field.text == strip_accents(field.text):
        name = strip_accents(name)  # written without accents ("fevrier"): keep it so
    return _case_like(field.text, name)


def _padded(fields: list[_Field]) -> bool:
    """Whether a numeric date pads its day and month to two digits ("08/04", not "8/4").

    A leading zero says yes, a single digit says no; "14/12/2024" says nothing, and a four-digit
    year is then taken for the padded style (dd/mm/yyyy), a two-digit one for d/m/yy.
    """
    numbers = [_digits(f.text) for f in fields if f.kind in ("day", "month") and f.word is None]
    if any(n.startswith("0") for n in numbers):
        return True
    if any(len(n) == 1 for n in numbers):
        return False
    year = next((f.text for f in fields if f.kind == "year"), "")
    return len(year.lstrip("'")) == 4


def _digits(day: str) -> str:
    """The number of a day without its ordinal suffix ("3rd" → "3", "1er" → "1")."""
    end = 0
    while end < len(day) and day[end].isdigit():
        end += 1
    return day[:end]


def _ordinal(day: int, suffix: str) -> str:
    if suffix.casefold() in ("er", "ère", "e"):
        return "er" if day == 1 else ""
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _format_field(field: _Field, moved: dt.date, fields: list[_Field]) -> str:
    text = field.text
    if field.kind == "weekday":
        return _name_like(field, moved.weekday(), _WEEKDAYS)
    if field.kind == "year":
        if text.startswith("'"):
            return f"'{moved.year % 100:02d}"
        return f"{moved.year % 100:02d}" if len(text) == 2 else f"{moved.year:04d}"
    if field.kind == "month":
        if field.word is not None:
            return _name_like(field, moved.month, _MONTHS)
        return f"{moved.month:0{2 if _padded(fields) else 1}d}"
    # the day, with its ordinal suffix if it had one ("1er" in a written French date)
    digits = _digits(text)
    suffix = text[len(digits) :]
    numeric = all(f.word is None for f in fields if f.kind == "month")
    padded = _padded(fields) if numeric else digits.startswith("0")
    number = f"{moved.day:0{2 if padded else 1}d}"
    if suffix:
        return number + _case_like(suffix, _ordinal(moved.day, suffix))
    french = any(
        f.word is not None and f.word.language == "fr" for f in fields if f.kind == "month"
    )
    return number + ("er" if french and moved.day == 1 else "")


# --- finding ---------------------------------------------------------------------------------


def _field(m: re.Match[str], group: str, kind: str, start: int, language: str) -> _Field | None:
    if m.groupdict().get(group) is None:
        return None
    end = m.end(group)
    if group == "day" and m.groupdict().get("suffix"):
        end = m.end("suffix")
    text = m.string[m.start(group) : end]
    word = None
    if kind in ("month", "weekday") and not text.isdigit():
        word = _lookup(_MONTH_WORDS if kind == "month" else _WEEKDAY_WORDS, text, language)
    return _Field(m.start(group) - start, end - start, kind, text, word)


def _year(text: str) -> int:
    value = int(text.lstrip("'"))
    if len(text.lstrip("'")) == 4:
        return value
    return 2000 + value if value <= dt.date.today().year % 100 + 5 else 1900 + value


_BRITISH = re.compile(
    r"\b(?:centre|colour|haemo\w*|anaesth\w*|paediatr\w*|oesophag\w*|neighbour\w*|"
    r"mum|GP|A&E|NHS|FY[12]|registrar|ward\s+round|programme|organis\w+|"
    r"[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}|\+44)\b"
)
_AMERICAN = re.compile(
    r"\b(?:center|color|hemo\w*|anesth\w*|pediatr\w*|esophag\w*|neighbor\w*|mom|ER|"
    r"program|organiz\w+|[A-Z]{2}\s\d{5}(?:-\d{4})?|\(\d{3}\)\s?\d{3}-\d{4}|\+1)\b"
)


def _month_first(text: str, matches: list[list[re.Match[str]]], language: str) -> bool:
    """Whether the text writes numeric dates month first (US) or day first (FR, UK).

    The text's own unambiguous dates decide ("25/04/2024" is day first, and so is a written
    "3 Nov 2023"; "04/25/2024" and "Nov 3, 2023" are month first), helped in English by
    British or American writing ("centre", "anaesthetist", a UK postcode; "center", a US
    phone); failing those, English is month first and French day first.
    """
    votes = 0
    if language == "en":  # British and American writing, a weak hint each
        votes += len(_AMERICAN.findall(text)) - len(_BRITISH.findall(text))
    for m in matches[1]:
        first, second = int(m["first"]), int(m["second"])
        votes += (first > 12 >= second) * -2 + (second > 12 >= first) * 2
    votes -= sum(1 for m in matches[2] if m["year"])
    votes += sum(1 for m in matches[3] if m["year"])
    if votes:
        return votes > 0
    return language == "en"


def _build(m: re.Match[str], index: int, language: str, month_first: bool) -> TextDate | None:
    start = m.start()
    groups = m.groupdict()
    parts: tuple[tuple[str, str], ...]
    if index == 1:  # numeric: in the text's order, unless impossible
        first, second = int(groups["first"]), int(groups["second"])
        if month_first and first > 12 >= second:
            month_first = False
        elif not month_first and second > 12 >= first:
            month_first = True
        month_group, day_group = ("first", "second") if month_first else ("second", "first")
        parts = ((month_group, "month"), (day_group, "day"), ("year", "year"))
    else:
        parts = (("weekday", "weekday"), ("day", "day"), ("month", "month"), ("year", "year"))
    fields = [f for group, kind in parts if (f := _field(m, group, kind, start, language))]
    by_kind = {f.kind: f for f in fields}
    month_field = by_kind["month"]
    month = month_field.word.number if month_field.word else int(month_field.text)
    day = int(_digits(by_kind["day"].text)) if "day" in by_kind else None
    year = _year(by_kind["year"].text) if "year" in by_kind else None
    if year is None and not _plausible_without_year(m, month_field):
        return None
    valid = True
    try:
        dt.date(year or 2000, month, day or 15)
    except ValueError:
        valid = False
    lead = min(f.start for f in fields)  # "le 3 avril", "the 3rd": the article stays outside
    for f in fields:
        f.start, f.end = f.start - lead, f.end - lead
    text = m.group()[lead:]
    return TextDate(start + lead, m.end(), text, day, month, year, fields, valid=valid)


def _plausible_without_year(m: re.Match[str], month: _Field) -> bool:
    """A day and a month without a year is a date only when the month is clearly one.

    English month names are capitalised ("May 3", not "may 3"); a French abbreviation without
    its dot ("3 sept") is the number seven unless a weekday or "le" comes first.
    """
    if month.word is None:
        return False
    if month.word.language == "en":
        return month.text[:1].isupper()
    return not (month.word.short and not month.text.endswith(".")) or m.group()[:1].isalpha()


def find_dates(text: str, language: str) -> list[TextDate]:
    """Every date in ``text`` (left to right, no overlaps; the longest match wins).

    The order of ambiguous numeric dates is the text's own (see :func:`_month_first`), else
    the ``language``'s ("en" or "fr"), which also reads a name both languages share; names of
    both languages are found.
    """
    return find_dates_each(text, (language,))[language]


def find_dates_each(text: str, languages: Sequence[str]) -> dict[str, list[TextDate]]:
    """:func:`find_dates` in each of ``languages``, matching the patterns once (the leak scan
    reads every text both ways, and matching is most of the cost)."""
    if not any(c.isdigit() for c in text):
        return {language: [] for language in languages}
    named = _NAMED_MONTH.search(text.lower()) is not None
    matches = [list(pattern.finditer(text)) if named or index not in _NEEDS_MONTH_NAME else []
               for index, pattern in enumerate(_PATTERNS)]
    return {language: _dates_in(text, matches, language) for language in languages}


def _dates_in(text: str, matches: list[list[re.Match[str]]], language: str) -> list[TextDate]:
    found: list[TextDate] = []
    month_first = _month_first(text, matches, language)
    for index, pattern_matches in enumerate(matches):
        for m in pattern_matches:
            date = _build(m, index, language, month_first)
            if date is not None:
                found.append(date)
    found.sort(key=lambda d: (d.start, -(d.end - d.start)))
    kept: list[TextDate] = []
    for date in found:
        if kept and date.start < kept[-1].end:
            continue
        kept.append(date)
    last_year: int | None = next((d.year for d in kept if d.year is not None), None)
    for date in kept:
        if _BIRTH_CONTEXT.search(text, max(0, date.start - 40), date.start):
            date.birth = True
        if date.year is not None:
            last_year = date.year
        else:
            date.assumed_year = last_year  # "on July 6", after "12 March 2023": 2023
    return kept
