"""Presidio's AnalyzerEngine on the NER pass's own Docs: recognizers, context, no second pass."""

from __future__ import annotations

from typing import Any

import pytest

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.presidio import FrNirRecognizer, PresidioEngine
from fhirlake.pseudonymize.rules import TextSlot
from fhirlake.pseudonymize.text import TextScrubber

_BODY = "2840519012345"
_NIR = f"2 84 05 2A 012 345 {97 - int(_BODY) % 97:02d}"
_FR = (
    f"Patiente vue ce jour. Numéro de sécurité sociale {_NIR}. Tél 06 12 34 56 78. "
    "IBAN FR14 2004 1010 0505 0001 3M02 606. Carte 4111 1111 1111 1111. "
    "Dossier 12345678. Courriel jeanne.martin@example.fr."
)
_EN = "Seen today. SSN 536-90-4399, cell (212) 555-0143, chart 87654321, mail a.b@example.com."


def _found(scrubber: TextScrubber, language: str, text: str) -> dict[str, str]:
    ((_, presidio),) = scrubber.models.analyse(language, [text], 8)
    return {text[s:e]: kind for s, e, kind, _ in presidio}


def test_registry_is_the_analyzer_files(scrubber: TextScrubber) -> None:
    engine = scrubber.models.presidio()
    assert engine is not None
    names = {
        language: {r.name for r in engine.analyzer.get_recognizers(language)}
        for language in ("en", "fr")
    }
    assert "FrNirRecognizer" in names["fr"] and "UsSsnRecognizer" in names["en"]
    assert {"EmailRecognizer", "IbanRecognizer", "CreditCardRecognizer"} <= names["fr"]
    assert not any("Spacy" in n for ns in names.values() for n in ns)  # names come from ner.py
    phones = {
        r.supported_language: r.supported_regions
        for r in engine.analyzer.get_recognizers()
        if r.name == "LanguagePhoneRecognizer"
    }
    assert phones == {"fr": ("FR",), "en": ("US",)}


def test_recognizers_add_their_findings_french(scrubber: TextScrubber) -> None:
    found = _found(scrubber, "fr", _FR)
    assert found[_NIR] == "FR_NIR"
    assert found["06 12 34 56 78"] == "PHONE_NUMBER"
    assert found["FR14 2004 1010 0505 0001 3M02 606"] == "IBAN_CODE"
    assert found["4111 1111 1111 1111"] == "CREDIT_CARD"
    assert found["jeanne.martin@example.fr"] == "EMAIL_ADDRESS"


def test_recognizers_add_their_findings_english(scrubber: TextScrubber) -> None:
    found = _found(scrubber, "en", _EN)
    assert found["536-90-4399"] == "US_SSN"
    assert found["(212) 555-0143"] == "PHONE_NUMBER"
    assert found["a.b@example.com"] == "EMAIL_ADDRESS"


def test_context_words_are_read_from_the_lower_cased_tokens(scrubber: TextScrubber) -> None:
    def score(text: str) -> float:
        ((_, presidio),) = scrubber.models.analyse("fr", [text], 8)
        return max(s for _, _, kind, s in presidio if kind == "PHONE_NUMBER")

    # "TÉL" is the context word "tél" once lower-cased: it raises the phone's score
    assert score("Numéro 06 12 34 56 78 demain.") < score("TÉL 06 12 34 56 78 demain.")


def test_spacy_runs_once_per_text(scrubber: TextScrubber, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = scrubber.models.presidio()
    assert engine is not None

    def second_pass(*_: Any, **__: Any) -> None:
        raise AssertionError("Presidio ran spaCy itself")

    monkeypatch.setattr(engine.nlp_engine, "process_text", second_pass)
    model = scrubber.models.model("fr")
    calls: list[int] = []
    pipe = model.pipe

    def counting_pipe(texts: list[str], **kwargs: Any) -> Any:
        calls.append(len(texts))
        return pipe(texts, **kwargs)

    monkeypatch.setattr(model, "pipe", counting_pipe)
    list(scrubber.models.analyse("fr", [_FR, _FR + " Suite."], 8))
    assert calls == [2]


def test_nir_recognizer_checks_the_key() -> None:
    recognizer = FrNirRecognizer()
    assert recognizer.validate_result(_NIR)
    wrong = _NIR[:-2] + f"{(int(_NIR[-2:]) + 1) % 97:02d}"
    assert not recognizer.validate_result(wrong)


def test_findings_reach_the_output(scrubber: TextScrubber) -> None:
    container = {"text": _FR}
    slot = TextSlot(
        container=container,
        slot="text",
        text=_FR,
        kind="plain",
        parent=container,
        rule="test",
        patient=None,
        offset=0,
        language="fr",
    )
    scrubber.scrub([slot])
    for secret in (_NIR, "06 12 34 56 78", "FR14 2004", "4111 1111", "12345678", "jeanne.martin"):
        assert secret not in container["text"]


def test_a_registry_is_required() -> None:
    with pytest.raises(PolicyError, match="recognizer_registry"):
        PresidioEngine({"supported_languages": ["en"]}, {})
