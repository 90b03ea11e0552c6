"""A labelled corpus of French and English clinical notes in a FHIR R4 export, and its scorer.

Written for fhirlake's free-text de-identification (issue #14) by someone who did not read the
implementation: the notes, people, codes and formats come from the issue's words, not from
what the code handles.

    from tests.pseudonymize.corpus import write_corpus, score
    labels = write_corpus(out_dir, language="fr", notes=500, seed=1)
    ...  # fhirlake pseudonymize out_dir pseudo
    result = score(labels, pseudo)   # result["fr"]["recall"]["NAME"]["recall"], ...

See :mod:`.generate` for what is written, :mod:`.scoring` for what is measured.
"""

from .dates import BIRTH_FORMATS, FORMATS, render, shifted_renderings
from .generate import MARKER_SYSTEM, RESOURCE_FILES, TEMPLATES, write_corpus
from .labels import ENTITY_LABELS, NoteLabels, Span, Term, read_labels
from .oracle import raw_dates, redact, write_oracle
from .scoring import (
    NoteResult,
    SpanResult,
    evaluate,
    evaluate_note,
    marker_of,
    match_outputs,
    note_text,
    occurrences,
    offset_of,
    score,
    summarize,
)

__all__ = [
    "BIRTH_FORMATS",
    "ENTITY_LABELS",
    "FORMATS",
    "MARKER_SYSTEM",
    "RESOURCE_FILES",
    "TEMPLATES",
    "NoteLabels",
    "NoteResult",
    "Span",
    "SpanResult",
    "Term",
    "evaluate",
    "evaluate_note",
    "marker_of",
    "match_outputs",
    "note_text",
    "occurrences",
    "offset_of",
    "raw_dates",
    "read_labels",
    "redact",
    "render",
    "score",
    "shifted_renderings",
    "summarize",
    "write_corpus",
    "write_oracle",
]
