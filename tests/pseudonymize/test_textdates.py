"""Dates in free text: every format of the issue, in both languages, moved in their own format."""

from __future__ import annotations

import datetime as dt

import pytest

from fhirlake.pseudonymize.textdates import find_dates

OFFSET = 25  # 8 April 2024 + 25 days = 3 May 2024 (a Friday)


def _moved(text: str, language: str, birth: str | None = None) -> list[str | None]:
    return [d.render(OFFSET, birth) for d in find_dates(text, language)]


@pytest.mark.parametrize(
    ("language", "written", "moved"),
    [
        ("fr", "08/04/2024", "03/05/2024"),
        ("fr", "8/4/24", "3/5/24"),
        ("fr", "2024-04-08", "2024-05-03"),
        ("fr", "08.04.2024", "03.05.2024"),
        ("fr", "lundi 8 avril 2024", "vendredi 3 mai 2024"),
        ("fr", "8 avr. 2024", "3 mai 2024"),
        ("fr", "le 1er avril 2024", "26 avril 2024"),
        ("fr", "LUNDI 8 AVRIL 2024", "VENDREDI 3 MAI 2024"),
        ("fr", "8 fevrier 2024", "4 mars 2024"),
        ("fr", "avril 2024", "mai 2024"),
        ("fr", "04/2024", "05/2024"),
        ("en", "04/08/2024", "05/03/2024"),
        ("en", "4/8/24", "5/3/24"),
        ("en", "2024-04-08T10:30:00Z", "2024-05-03"),
        ("en", "Nov 3, 2023", "Nov 28, 2023"),
        ("en", "November 3rd, 2023", "November 28th, 2023"),
        ("en", "3 Nov 2023", "28 Nov 2023"),
        ("en", "Monday, April 8, 2024", "Friday, May 3, 2024"),
        ("en", "the 8th of April 2024", "3rd of May 2024"),
        ("en", "April 2024", "May 2024"),
        ("en", "Apr. 2024", "May 2024"),
    ],
)
def test_each_format_is_moved_in_its_own_format(language: str, written: str, moved: str) -> None:
    found = find_dates(f"Vu / seen: {written}.", language)
    assert len(found) == 1
    assert found[0].render(OFFSET) == moved


def test_a_day_without_year_moves_too() -> None:
    assert _moved("revu le 3 avril", "fr") == ["28 avril"]
    assert _moved("seen on April 3", "en") == ["April 28"]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "née le 3 avril 1958"),
        ("fr", "né(e) le 03/04/1958"),
        ("fr", "date de naissance : 3 avril 1958"),
        ("en", "born on April 3, 1958"),
        ("en", "DOB: 04/03/1958"),
    ],
)
def test_birth_dates_keep_only_the_year(language: str, text: str) -> None:
    assert _moved(text, language) == ["1958"]


def test_a_date_equal_to_the_birth_date_keeps_only_the_year() -> None:
    assert _moved("Patiente vue le 3 avril 1958 (anniversaire)", "fr", "1958-04-03") == ["1958"]
    assert _moved("Patiente vue le 4 avril 1958", "fr", "1958-04-03") == ["29 avril 1958"]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "quit smoking at age 45 in 2010"),
        ("fr", "il y a 3 jours, depuis 2019"),
        ("en", "take 2 tablets, may 3 times a day"),
        ("fr", "tél 01.23.45.67.89"),
        ("fr", "HbA1c 7,2 % ; 1 000 000 UI"),
        ("fr", "sept ans plus tard"),
    ],
)
def test_what_cannot_be_placed_is_left_alone(language: str, text: str) -> None:
    assert find_dates(text, language) == []


def test_a_date_that_does_not_exist_becomes_a_tag() -> None:
    (found,) = find_dates("le 31/02/2024", "fr")
    assert found.render(OFFSET) is None


def test_numeric_order_follows_the_language_unless_impossible() -> None:
    (fr,) = find_dates("08/04/2024", "fr")
    (en,) = find_dates("08/04/2024", "en")
    (uk,) = find_dates("25/04/2024", "en")
    assert (fr.value(), en.value(), uk.value()) == (
        dt.date(2024, 4, 8),
        dt.date(2024, 8, 4),
        dt.date(2024, 4, 25),
    )
