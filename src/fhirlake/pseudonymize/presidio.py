"""Presidio's recognizers, run on the Docs of the NER pass (no second spaCy pass).

Presidio is the analyzer framework: its ``AnalyzerEngine`` runs the recognizers that
``anonymization/presidio-analyzer.yaml`` lists under ``recognizer_registry`` (e-mail, phone,
IBAN, credit card, IP, URL, SSN, the French NIR with its key checked, MRN by context…) and adds
their findings to fhirlake's own rules. Presidio normally runs its spaCy pipeline itself; here
it is given the ``Doc`` that the NER pass (:mod:`fhirlake.pseudonymize.ner`) already made with
``nlp.pipe``, as :class:`~presidio_analyzer.nlp_engine.NlpArtifacts`, so the model still runs
once per text. The NER-only pipelines have no lemmatizer: the lower-cased token stands for the
lemma, which is what Presidio's context words ("tél", "nir", "mrn") are compared with.

Names and places are taken from the Doc by :class:`~fhirlake.pseudonymize.ner.NerModels`
(with the clinical allow-list and per-line trimming), so the registry has no
``SpacyRecognizer``: Presidio's recognizers here are the pattern ones.

>>> engine = PresidioEngine.from_file(DEFAULT_ANALYZER, {})  # doctest: +SKIP
>>> engine.analyze(doc, "fr")  # doctest: +SKIP
[(18, 33, 'FR_NIR', 1.0)]
"""

from __future__ import annotations

import bisect
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml

from fhirlake.pseudonymize.errors import PolicyError
from fhirlake.pseudonymize.recognizers import NIR_PATTERN, nir_key_is_valid

# EmailRecognizer validates domains with tldextract, whose module-level extractor reads this at
# import and would otherwise fetch the public suffix list from the network: use its snapshot
# (ner.py sets it too, since loading a spaCy model imports Presidio through its entry point).
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from presidio_analyzer import (
    AnalyzerEngine,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import PhoneRecognizer
from presidio_analyzer.recognizer_registry import RecognizerRegistryProvider

__all__ = ["FrNirRecognizer", "LanguagePhoneRecognizer", "PresidioEngine"]

# (start, end, entity type, score)
Finding = tuple[int, int, str, float]


class FrNirRecognizer(PatternRecognizer):
    """The French NIR/INS, its mod-97 key checked (a phone number or an amount is not a NIR).

    Named in the analyzer file as ``{name: FrNirRecognizer, type: predefined}``: Presidio finds
    predefined recognizers among the subclasses of ``EntityRecognizer`` by class name.
    """

    CONTEXT: ClassVar[list[str]] = ["nir", "ins", "sécurité", "sociale", "insee", "vitale"]

    def __init__(
        self,
        supported_language: str = "fr",
        supported_entity: str = "FR_NIR",
        context: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            supported_entity=supported_entity,
            supported_language=supported_language,
            name=name or "FrNirRecognizer",
            patterns=[Pattern("NIR", NIR_PATTERN, 0.5)],
            context=context or self.CONTEXT,
        )

    def validate_result(self, pattern_text: str) -> bool:
        return nir_key_is_valid(pattern_text)


# Where a phone number can be: a run of digits and separators holding seven digits or more,
# that is not a numeric date (08/04/2024, 2024-04-08)
_PHONE_WINDOW = re.compile(r"(?<!\w)[+(]?\d[\d \t\u00a0().\-/]{5,}\d(?!\w)")
_NUMERIC_DATE = re.compile(r"\d{1,4}([/.-])\d{1,2}\1\d{2,4}")
_APART = "\n|\n"  # no phone number runs across this


class LanguagePhoneRecognizer(PhoneRecognizer):
    """Presidio's phone recognizer, checking numbers against its language's numbering plan.

    Presidio's own tries eight regions, each a full pass of ``phonenumbers`` over the text,
    and ``phonenumbers`` parses every number it meets (doses, years, blood pressures): most of
    the cost of all recognizers together. Here a French note is checked against the French
    plan and an English one against the North American plan (US and Canada share it), and
    ``phonenumbers`` sees only the runs of digits long enough to be a number (not the dates),
    each apart, and its findings are moved back to their place in the text. International numbers are found by fhirlake's own
    patterns either way.
    """

    REGIONS: ClassVar[dict[str, tuple[str, ...]]] = {"fr": ("FR",), "en": ("US",)}

    def __init__(
        self,
        context: list[str] | None = None,
        supported_language: str = "en",
        supported_entity: str = "PHONE_NUMBER",
        name: str | None = None,
    ) -> None:
        super().__init__(
            context=context,
            supported_language=supported_language,
            supported_entity=supported_entity,
            supported_regions=self.REGIONS.get(supported_language, ("US",)),
            name=name or "LanguagePhoneRecognizer",
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        windows = [
            (m.start(), m.group())
            for m in _PHONE_WINDOW.finditer(text)
            if sum(c.isdigit() for c in m.group()) >= 7 and not _NUMERIC_DATE.fullmatch(m.group())
        ]
        if not windows:
            return []
        # the windows alone, apart, then each finding moved back to its place in the text
        starts: list[int] = []
        position = 0
        for _, window in windows:
            starts.append(position)
            position += len(window) + len(_APART)
        results: list[RecognizerResult] = super().analyze(
            _APART.join(w for _, w in windows),
            entities,
            nlp_artifacts,  # type: ignore[arg-type]  # Presidio annotates it without None
        )
        for result in results:
            i = bisect.bisect_right(starts, result.start) - 1
            shift = windows[i][0] - starts[i]
            result.start += shift
            result.end += shift
        return results


class _SharedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines loaded elsewhere (it never loads a model)."""

    def __init__(self, pipelines: dict[str, Any]) -> None:
        super().__init__(models=[{"lang_code": k, "model_name": k} for k in pipelines])
        self.pipelines = pipelines
        self.nlp = pipelines  # type: ignore[assignment]  # Presidio declares it None until load

    def load(self) -> None:  # the pipelines are the NER pass's own
        pass


class PresidioEngine:
    """One ``AnalyzerEngine`` per process, fed with the NER pass's Docs.

    ``pipelines`` maps a language to its loaded spaCy pipeline; it may be filled after the
    engine is built (the models load lazily), as long as a language's pipeline is there before
    its first Doc is analysed.
    """

    def __init__(
        self, configuration: dict[str, Any], pipelines: dict[str, Any], *, where: str = ""
    ) -> None:
        languages = [str(x) for x in configuration.get("supported_languages") or ("en",)]
        registry_conf = configuration.get("recognizer_registry")
        if not isinstance(registry_conf, dict):
            raise PolicyError(where, "/recognizer_registry", "expected Presidio's recognizers")
        try:
            registry = RecognizerRegistryProvider(
                registry_configuration=registry_conf
            ).create_recognizer_registry()
        except (ValueError, TypeError, KeyError) as exc:
            raise PolicyError(where, "/recognizer_registry", str(exc)) from None
        self.nlp_engine = _SharedSpacyEngine(pipelines)
        self.threshold = float(configuration.get("default_score_threshold", 0.35))
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self.nlp_engine,
            supported_languages=languages,
            default_score_threshold=self.threshold,
        )
        self.languages = frozenset(languages)

    @classmethod
    def from_file(cls, path: Path, pipelines: dict[str, Any]) -> PresidioEngine:
        """The engine the analyzer file describes (its ``recognizer_registry`` section)."""
        try:
            conf = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(str(path), "", f"cannot read the analyzer file ({exc})") from None
        if not isinstance(conf, dict):
            raise PolicyError(str(path), "", "expected a mapping")
        return cls(conf, pipelines, where=str(path))

    def artifacts(self, doc: Any, language: str) -> NlpArtifacts:
        """The Doc as Presidio's NLP artifacts, read in one pass over its tokens.

        No entities (names come from ``ner``); the lower-cased token stands for its lemma (the
        pipelines have no lemmatizer), and the keywords are the tokens that are neither stop
        words nor punctuation, as Presidio's own engine makes them. The tokens are given as
        their texts: Presidio's context enhancer only measures them, and a list of strings
        costs a fraction of iterating the Doc again for each finding.
        """
        words = [(t.text, t.idx, t.lower_, t.is_stop or t.is_punct) for t in doc]
        artifacts = NlpArtifacts(
            entities=[],
            tokens=[w[0] for w in words],  # type: ignore[arg-type]
            tokens_indices=[w[1] for w in words],
            lemmas=[w[2] for w in words],
            nlp_engine=None,  # keywords are set below, without a vocabulary lookup per token
            language=language,
        )
        artifacts.nlp_engine = self.nlp_engine
        artifacts.keywords = [
            part for w in words if not w[3] for part in w[2].split(":") if w[2] != "be"
        ]
        return artifacts

    def analyze(self, doc: Any, language: str, text: str | None = None) -> list[Finding]:
        """What Presidio's recognizers find in the Doc's text, above the score threshold.

        ``text`` is the Doc's text when the caller has it (rebuilding it from the Doc costs).
        """
        if language not in self.languages:
            return []
        results: list[RecognizerResult] = self.analyzer.analyze(
            text=doc.text if text is None else text,
            language=language,
            nlp_artifacts=self.artifacts(doc, language),
        )
        return [(r.start, r.end, r.entity_type, float(r.score)) for r in results]

    def warm_up(self) -> None:
        """Load what Presidio's recognizers load on first use (before worker processes fork)."""
        for language, nlp in self.nlp_engine.pipelines.items():
            if language in self.languages:
                self.analyze(nlp.make_doc("a.b@example.org 06 12 34 56 78"), language)
