"""The NER models: spaCy, loaded once per process with the NER pipe alone, run in batches.

Free text costs a neural pass per text, and that pass is the floor of the whole run: nothing
else may cost as much. So each model is loaded with every pipe but ``ner`` excluded (the
English and French small models give their NER its own token-to-vector layer, so tagger,
parser, lemmatizer and morphologizer change nothing it finds), texts go to ``nlp.pipe`` in
batches, and only entity labels that name people, places and organisations are kept. Dates,
numbers and identifiers are found by rules (``textdates``, ``patterns``) and by Presidio's
recognizers, which are given the same Doc (``presidio``), not by the model.

The models, the label mapping and Presidio's recognizers come from the analyzer file the
policy names (``anonymization/presidio-analyzer.yaml``, in Presidio's format). Models are
PyPI packages or folders: nothing is downloaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fhirlake.pseudonymize.errors import PolicyError

# Presidio registers a spaCy factory, so loading any spaCy model imports presidio_analyzer and,
# through its EmailRecognizer, tldextract, whose module-level extractor reads this once and
# would otherwise fetch the public suffix list from the network: it uses its own snapshot.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

if TYPE_CHECKING:
    from fhirlake.pseudonymize.presidio import PresidioEngine

__all__ = ["NerModels", "NerSettings", "guess_language", "load_ner_settings"]

_FRENCH = re.compile(r"\b(?:le|la|les|des|du|et|est|une|avec|pour|dans|sur|au|aux|pas)\b", re.I)
_ENGLISH = re.compile(r"\b(?:the|and|is|was|with|for|of|in|on|to|has|his|her|no)\b", re.I)


def guess_language(text: str, default: str, languages: frozenset[str]) -> str:
    """ "fr" or "en" from the commonest function words of the text's first 2,000 characters.

    A patient's communication language says little about the language of a note (a French
    hospital writes French to an English-speaking patient); the words do.
    """
    sample = text[:2000]
    french = len(_FRENCH.findall(sample))
    english = len(_ENGLISH.findall(sample))
    if french > english and "fr" in languages:
        return "fr"
    if english > french and "en" in languages:
        return "en"
    return default


@dataclass(frozen=True, slots=True)
class NerSettings:
    """Which spaCy model per language, what its labels mean, and which to trust.

    As in Presidio: entities of ``low_score_entity_names`` have their score multiplied by
    ``low_confidence_score_multiplier``, and any below ``default_score_threshold`` is dropped
    (the default file so drops ORGANIZATION, which the small models tag on "CBC" or "MG").
    """

    models: dict[str, str]
    mapping: dict[str, str]  # model label -> entity type (PER -> PERSON)
    path: Path
    scores: dict[str, float] = field(default_factory=dict)  # entity type -> score
    presidio: bool = False  # the file lists Presidio recognizers (``recognizer_registry``)


def load_ner_settings(path: Path) -> NerSettings:
    """Read the models and label mapping from the analyzer file; check the models exist."""
    where = str(path)
    try:
        conf = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(where, "", f"cannot read the analyzer configuration ({exc})") from None
    if not isinstance(conf, dict):
        raise PolicyError(where, "", "expected a mapping")
    nlp = conf.get("nlp_configuration")
    if not isinstance(nlp, dict) or not isinstance(nlp.get("models"), list) or not nlp["models"]:
        raise PolicyError(where, "/nlp_configuration/models", "expected a list of spaCy models")
    import spacy.util

    models: dict[str, str] = {}
    for i, model in enumerate(nlp["models"]):
        name = model.get("model_name") if isinstance(model, dict) else None
        lang = model.get("lang_code") if isinstance(model, dict) else None
        if not isinstance(lang, str) or not lang:
            raise PolicyError(where, f"/nlp_configuration/models/{i}/lang_code", "expected a code")
        if not isinstance(name, str) or not (spacy.util.is_package(name) or Path(name).exists()):
            raise PolicyError(
                where,
                f"/nlp_configuration/models/{i}/model_name",
                f"spaCy model {name!r} is not installed (it is a PyPI package: pip install -e .)",
            )
        models[lang] = name
    ner = nlp.get("ner_model_configuration") or {}
    mapping = ner.get("model_to_presidio_entity_mapping") if isinstance(ner, dict) else None
    if not isinstance(mapping, dict) or not mapping:
        raise PolicyError(
            where,
            "/nlp_configuration/ner_model_configuration/model_to_presidio_entity_mapping",
            "expected a mapping of model labels to entity types",
        )
    low = set(ner.get("low_score_entity_names") or ())
    multiplier = float(ner.get("low_confidence_score_multiplier", 0.4))
    threshold = float(conf.get("default_score_threshold", 0.35))
    scores = {
        entity: score * (multiplier if entity in low else 1.0) for entity, score in _SCORES.items()
    }
    kept = {
        str(k): str(v) for k, v in mapping.items() if v in _NAMED and scores[str(v)] >= threshold
    }
    return NerSettings(
        models, kept, path, scores, isinstance(conf.get("recognizer_registry"), dict)
    )


Finding = tuple[int, int, str, float]  # (start, end, entity type, score)

# Entity types the model is trusted for; dates and numbers are left to the rules
_NAMED = frozenset({"PERSON", "LOCATION", "ORGANIZATION"})
_SCORES = {"PERSON": 0.85, "LOCATION": 0.85, "ORGANIZATION": 0.4}


class NerModels:
    """The loaded models of one process: ``analyse`` runs a batch of texts of one language.

    Each text goes through its spaCy pipeline once (``nlp.pipe``); the same Doc gives the
    named entities and, when the analyzer file lists recognizers, Presidio's findings
    (:mod:`fhirlake.pseudonymize.presidio`).
    """

    def __init__(self, settings: NerSettings) -> None:
        self.settings = settings
        self.languages = frozenset(settings.models)
        self._nlp: dict[str, Any] = {}
        self._presidio: PresidioEngine | None = None

    def model(self, language: str) -> Any:
        """The spaCy pipeline of a language, NER only (loaded on first use, then kept)."""
        nlp = self._nlp.get(language)
        if nlp is None:
            import spacy

            name = self.settings.models[language]
            full = spacy.util.get_model_meta(
                spacy.util.get_package_path(name) if spacy.util.is_package(name) else Path(name)
            )
            pipes = [p for p in full.get("pipeline", []) if p != "ner"]
            nlp = spacy.load(name, exclude=pipes)
            self._nlp[language] = nlp
        return nlp

    def presidio(self) -> PresidioEngine | None:
        """Presidio's engine over these pipelines (built on first use), if the file has one."""
        if self._presidio is None and self.settings.presidio:
            from fhirlake.pseudonymize.presidio import PresidioEngine

            self._presidio = PresidioEngine.from_file(self.settings.path, self._nlp)
        return self._presidio

    def load_all(self) -> None:
        """Load every model and Presidio now (in the parent, before worker processes fork)."""
        for language in self.settings.models:
            self.model(language)
        presidio = self.presidio()
        if presidio is not None:
            presidio.warm_up()

    def analyse(
        self, language: str, texts: list[str], batch_size: int
    ) -> Iterator[tuple[list[Finding], list[Finding]]]:
        """Per text, in order: its named entities and Presidio's findings.

        Each is a list of (start, end, entity type, score).
        """
        mapping = self.settings.mapping
        scores = self.settings.scores
        presidio = self.presidio()
        docs = self.model(language).pipe(texts, batch_size=batch_size)
        for text, doc in zip(texts, docs, strict=True):
            named = [
                (e.start_char, e.end_char, mapping[e.label_], scores[mapping[e.label_]])
                for e in doc.ents
                if e.label_ in mapping
            ]
            yield named, ([] if presidio is None else presidio.analyze(doc, language, text))

    def entities(self, language: str, texts: list[str], batch_size: int) -> Iterator[list[Finding]]:
        """(start, end, entity type, score) of each text's named entities, in order."""
        for named, _ in self.analyse(language, texts, batch_size):
            yield named
