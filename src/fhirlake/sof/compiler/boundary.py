"""lowBoundary() and highBoundary(): the extremes a value of limited precision may stand for.

``1.0`` (one decimal) stands for anything in [0.95, 1.05); ``1970-06`` for any day of June
1970; a dateTime without a time zone for any zone from +14:00 to -12:00. Dates and times stay
text, as SQL-on-FHIR stores them; decimals are computed from their literal text, which is why
the compiler reads a decimal as text when a boundary is taken of it.
"""

from __future__ import annotations

from sqlglot import exp

from fhirlake.sof.compiler import sql

__all__ = ["boundary_sql"]

_DATE = r"(\d{4}(?:-\d{2}(?:-\d{2})?)?)"
_TIME = r"(\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)"
_DATETIME_PATTERN = rf"^{_DATE}(?:T{_TIME})?(Z|[+-]\d{{2}}:\d{{2}})?$"
_TIME_PATTERN = rf"^{_TIME}$"


def _text(value: str) -> exp.Expression:
    return exp.Literal.string(value)


def _by_length(text: exp.Expression, cases: dict[int, exp.Expression], default: exp.Expression) -> exp.Expression:
    length = exp.Length(this=text)
    return sql.case(*((exp.EQ(this=length, expression=exp.Literal.number(n)), v) for n, v in cases.items()), default=default)


def _date(date: exp.Expression, *, high: bool) -> exp.Expression:
    if not high:
        return _by_length(date, {4: exp.DPipe(this=date, expression=_text("-01-01")),
                                 7: exp.DPipe(this=date, expression=_text("-01"))}, date)
    month_end = sql.cast(exp.LastDay(this=sql.cast(exp.DPipe(this=date, expression=_text("-01")), "DATE")), "VARCHAR")
    return _by_length(date, {4: exp.DPipe(this=date, expression=_text("-12-31")), 7: month_end}, date)


def _time(time: exp.Expression, *, high: bool) -> exp.Expression:
    fill = ("23:59:59.999", ":59:59.999", ":59.999", ".999") if high else ("00:00:00.000", ":00:00.000", ":00.000", ".000")
    digit = "9" if high else "0"
    padded = exp.Pad(this=time, expression=exp.Literal.number(12), fill_pattern=_text(digit), is_left=False)
    fractional = exp.Substring(this=padded, start=exp.Literal.number(1), length=exp.Literal.number(12))
    return _by_length(time, {
        0: _text(fill[0]),
        2: exp.DPipe(this=time, expression=_text(fill[1])),
        5: exp.DPipe(this=time, expression=_text(fill[2])),
        8: exp.DPipe(this=time, expression=_text(fill[3])),
    }, fractional)


def _group(text: exp.Expression, pattern: str, group: int) -> exp.Expression:
    return exp.RegexpExtract(this=text, expression=_text(pattern), group=exp.Literal.number(group))


def _decimal(text: exp.Expression, *, high: bool) -> exp.Expression:
    dot = exp.StrPosition(this=text, substr=_text("."))
    places = sql.case((exp.GT(this=dot, expression=exp.Literal.number(0)),
                       exp.Sub(this=exp.Length(this=text), expression=dot)), default=exp.Literal.number(0))
    half = exp.Mul(this=exp.Literal.number("0.5"), expression=exp.Pow(this=exp.Literal.number(10), expression=exp.Neg(this=places)))
    number = sql.cast(text, "DOUBLE")
    moved = exp.Add(this=number, expression=half) if high else exp.Sub(this=number, expression=half)
    return exp.Round(this=moved, decimals=sql.cast(exp.Add(this=places, expression=exp.Literal.number(1)), "INTEGER"))


def _datetime(text: exp.Expression, *, high: bool) -> exp.Expression:
    date = _date(_group(text, _DATETIME_PATTERN, 1), high=high)
    time = _time(_group(text, _DATETIME_PATTERN, 2), high=high)
    zone = sql.coalesce(exp.Nullif(this=_group(text, _DATETIME_PATTERN, 3), expression=_text("")),
                        _text("-12:00" if high else "+14:00"))
    joined = exp.DPipe(this=exp.DPipe(this=exp.DPipe(this=date, expression=_text("T")), expression=time), expression=zone)
    return sql.case((exp.RegexpLike(this=text, expression=_text(_DATETIME_PATTERN)), joined))


def boundary_sql(fhir_type: str | None, text: exp.Expression, *, high: bool) -> tuple[exp.Expression, str] | None:
    """SQL for the low or high boundary of ``text`` (a value of ``fhir_type`` as text), and the
    result's type; None when the type has no boundary."""
    if fhir_type == "decimal":
        return _decimal(text, high=high), "decimal"
    if fhir_type == "date":
        return _date(text, high=high), "date"
    if fhir_type in ("dateTime", "instant"):
        return _datetime(text, high=high), "dateTime"
    if fhir_type == "time":
        matched = exp.RegexpLike(this=text, expression=_text(_TIME_PATTERN))
        return sql.case((matched, _time(text, high=high))), "time"
    return None
