"""Generated near-miss names of resource-type files: plural, case, typos, wrong extensions."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

# the types fhirlake synth writes (a file of each is in every synthetic batch)
SYNTH_TYPES = ("Condition", "DiagnosticReport", "DocumentReference", "Encounter", "Immunization",
               "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner",
               "Procedure")

STEM_MUTATIONS = ("plural", "lower", "upper", "drop", "swap", "double", "space", "underscore")
# the content stays plain NDJSON: a name a person could give such a file by mistake
EXTENSION_MUTATIONS = (".NDJSON", ".Ndjson", ".ndjson.gzip", "", ".json", ".ndjson.txt",
                       ".ndjsn", ".ndjson ")


def mutate_stem(stem: str, how: str, at: int) -> str:
    i = at % len(stem)
    j = min(i + 1, len(stem) - 1)
    return {
        "plural": stem + "s",
        "lower": stem.lower(),
        "upper": stem.upper(),
        "drop": stem[:i] + stem[i + 1:],
        "swap": stem[:i] + stem[j] + stem[i] + stem[j + 1:] if j > i else stem[::-1],
        "double": stem[:i] + stem[i] + stem[i:],
        "space": stem[:i] + " " + stem[i:] if i else stem + " ",
        "underscore": stem[:i] + "_" + stem[i:] if i else "_" + stem,
    }[how]


@st.composite
def near_miss_file(draw: st.DrawFn, types: tuple[str, ...] = SYNTH_TYPES) -> tuple[str, str]:
    """(type, file name): a name one mistake away from ``<type>.ndjson``."""
    kind = draw(st.sampled_from(types))
    if draw(st.booleans()):
        stem = mutate_stem(kind, draw(st.sampled_from(STEM_MUTATIONS)),
                           draw(st.integers(0, 40)))
        assume(stem != kind and stem not in SYNTH_TYPES)
        name = stem + ".ndjson"
    else:
        name = kind + draw(st.sampled_from(EXTENSION_MUTATIONS))
    return kind, name
