"""The small pieces: keys, references, dates, generalisation, terms, the NIR check."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from fhirlake.pseudonymize.dates import generalize_date, shift_date
from fhirlake.pseudonymize.errors import PseudonymKeyError
from fhirlake.pseudonymize.generalize import generalize_postal_code, top_code_age
from fhirlake.pseudonymize.keys import KEY_ENV_VAR, PseudonymKey, load_key
from fhirlake.pseudonymize.recognizers import nir_key_is_valid
from fhirlake.pseudonymize.references import rewrite_reference
from fhirlake.pseudonymize.terms import Term, TermMatcher

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(PseudonymKeyError, match=KEY_ENV_VAR):
        load_key(environ={})


def test_errors_never_show_the_key(tmp_path: Path) -> None:
    short = "s3cr3t-but-too-short"
    with pytest.raises(PseudonymKeyError) as caught:
        load_key(environ={KEY_ENV_VAR: short})
    assert short not in str(caught.value)
    key_file = tmp_path / "key"
    key_file.write_text(short)
    with pytest.raises(PseudonymKeyError) as caught:
        load_key(key_file)
    assert short not in str(caught.value) and str(key_file) in str(caught.value)
    with pytest.raises(PseudonymKeyError, match="cannot read"):
        load_key(tmp_path / "absent")


def test_key_file_and_env_give_the_same_pseudonyms(tmp_path: Path) -> None:
    secret = secrets.token_hex(32)
    (tmp_path / "key").write_text(secret + "\n")
    from_file, from_env = load_key(tmp_path / "key"), load_key(environ={KEY_ENV_VAR: secret})
    assert from_file.resource_id("x") == from_env.resource_id("x")
    assert secret not in repr(from_file)


def test_pseudonyms_depend_on_key_and_domain() -> None:
    a, b = PseudonymKey(secrets.token_bytes(32)), PseudonymKey(secrets.token_bytes(32))
    assert UUID.match(a.resource_id("123"))
    assert a.resource_id("123") == a.resource_id("123") != b.resource_id("123")
    assert a.identifier("urn:mrn", "123") != a.identifier("urn:ssn", "123")
    offsets = {a.day_offset(f"p{i}", 30) for i in range(500)}
    assert 0 not in offsets and min(offsets) == -30 and max(offsets) == 30


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/1", "Patient/P1"),
        ("Patient/1/_history/7", "Patient/P1/_history/7"),
        ("http://ehr.example/fhir/Patient/1", "http://ehr.example/fhir/Patient/P1"),
        ("urn:uuid:1", "urn:uuid:P1"),
        ("#1", "#P1"),
        ("Patient?identifier=x|1", None),
        ("Nonsense/1", None),
        ("just text", None),
    ],
)
def test_reference_forms(reference: str, expected: str | None) -> None:
    assert rewrite_reference(reference, lambda i: "P" + i, None, {"Patient"}) == expected


def test_bundle_urls_resolve_to_type_and_id() -> None:
    urls = {"urn:uuid:1": ("Patient", "1")}
    assert rewrite_reference("urn:uuid:1", lambda i: "P" + i, urls) == "Patient/P1"


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("2020-02-28", 1, "2020-02-29"),
        ("2020-02-28T23:59:59.123+01:00", 2, "2020-03-01T23:59:59.123+01:00"),
        ("2020-02", 20, "2020-03"),
        ("2020", -200, "2019"),
        ("2020-12-31T10:00:00Z", 1, "2021-01-01T10:00:00Z"),
    ],
)
def test_shift_keeps_precision_time_and_zone(value: str, days: int, expected: str) -> None:
    assert shift_date(value, days) == expected


@pytest.mark.parametrize(
    "bad", ["2020-13-01", "2020-02-30", "20200101", "2020-01-01T25:00", "2020-01T10:00:00Z", ""]
)
def test_invalid_dates_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        shift_date(bad, 1)


def test_generalize_dates() -> None:
    assert generalize_date("1969-12-30T10:00:00Z", 3, "year") == "1970"
    assert generalize_date("1969-12-30", 0, "month") == "1969-12"
    assert generalize_date("1969", 0, "month") == "1969"  # never finer than the input


@pytest.mark.parametrize(
    ("code", "country", "expected"),
    [
        ("98053-1234", "US", "980"),
        ("03601", None, "000"),
        ("75002", "FR", "75"),
        ("20090", "France", "2A"),
        ("20200", "FRA", "2B"),
        ("97411", "FR", "974"),
    ],
)
def test_postal_codes(code: str, country: str | None, expected: str) -> None:
    assert generalize_postal_code(code, country, frozenset({"036"})) == expected


def test_age_top_coding() -> None:
    assert (
        top_code_age(89, 89) is None
        and top_code_age(89.5, 89) == 90
        and top_code_age(104, 89) == 90
    )


def test_nir_key() -> None:
    body = "2840519012345"
    good = f"{body}{97 - int(body) % 97:02d}"
    assert nir_key_is_valid(good) and nir_key_is_valid("2 84 05 19 012 345 " + good[-2:])
    assert not nir_key_is_valid(good[:-2] + f"{(int(good[-2:]) + 1) % 97:02d}")
    corsica = "284052A012345"
    assert nir_key_is_valid(f"{corsica}{97 - int('2840519012345') % 97:02d}")


def test_term_matcher_words_case_and_compact_forms() -> None:
    matcher = TermMatcher(
        [
            Term("PERSON", "Carolee951", 1),
            Term("PHONE_NUMBER", "555-657-5098", 1),
            Term("PERSON", "Al", 1),
        ]
    )
    text = "CAROLEE951's phone: (555) 657 5098; Carolee9510 and Al are different"
    found = [(text[s:e], t.entity) for s, e, t in matcher.find(text)]
    assert found == [("CAROLEE951", "PERSON"), ("555) 657 5098", "PHONE_NUMBER")]


def test_weak_terms() -> None:
    assert Term("PERSON", "Hand", 1).weak and Term("DATE", "30/05/1955", 1).weak
    assert not Term("PERSON", "Carolee951", 1).weak and not Term("PERSON", "Ann Hand", 1).weak
