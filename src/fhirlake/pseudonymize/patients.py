"""Who a resource is about: the patient compartment, and what the run knows of each patient.

The date offset of a patient is derived from the key and the patient's id alone, so it needs
no lookup. What does need the Patient resource is read in a first pass over the input
(:class:`PatientDirectory`): the identifying strings for the deny-list of that patient's notes,
and the language the notes are likely written in.

A resource belongs to the patient its compartment reference points to: ``subject``,
``patient``, ``beneficiary``… (the R4 Patient CompartmentDefinition), and failing those the
first reference anywhere in it to a Patient (``Provenance.target``, ``Group.member.entity``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fhirlake.pseudonymize.clinical import CLINICAL_TYPES, ClinicalVocabulary, coded_texts
from fhirlake.pseudonymize.persons import Person, PersonIndex, name_parts
from fhirlake.pseudonymize.references import BundleUrls, patient_id_of
from fhirlake.pseudonymize.terms import Term, contact_terms, identifying_terms

__all__ = ["CONTEXT_TYPES", "PatientDirectory", "PatientInfo", "compartment_patient"]

# Resource types the first pass reads when free text is scrubbed: who the export names, and
# the clinical vocabulary its codes carry.
PEOPLE_TYPES = frozenset({"Patient", "RelatedPerson", "Practitioner", "PractitionerRole"})
CONTEXT_TYPES = PEOPLE_TYPES | CLINICAL_TYPES

# Elements that hold the compartment's patient, tried in order (R4 CompartmentDefinition
# "patient": most resources use subject or patient; Coverage beneficiary; ResearchSubject
# individual; EnrollmentRequest candidate).
_COMPARTMENT_ELEMENTS = ("patient", "subject", "beneficiary", "individual", "candidate")


@dataclass(slots=True, eq=False)
class PatientInfo:
    """What text scrubbing needs to know of one patient."""

    ordinal: int  # 1-based position in the input, used in reports instead of the id
    language: str | None
    terms: tuple[Term, ...]  # direct identifiers: the deny-list, and what the leak scan seeks
    quasi_terms: tuple[Term, ...]  # city, postal code: also removed from the patient's notes
    birth_date: str | None = None  # as in the input: a date equal to it in a note is cut
    dates: set[str] = field(default_factory=set)  # raw dates of the compartment (the scan)


def _language(patient: dict[str, Any]) -> str | None:
    """The patient's preferred (else first) communication language, as a 2-letter code."""
    found: list[tuple[bool, str]] = []
    for comm in patient.get("communication") or []:
        if not isinstance(comm, dict):
            continue
        for coding in (comm.get("language") or {}).get("coding") or []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and code:
                found.append((comm.get("preferred") is True, code.split("-")[0].lower()))
    found.sort(key=lambda f: not f[0])
    return found[0][1] if found else None


class PatientDirectory:
    """What the export says about people: patients by id, everyone named, clinical words.

    ``persons`` indexes every person the export names (patients, their contacts and
    relatives, practitioners) for the text deny-list; ``clinician_terms`` are practitioners'
    strings (full names, phones, e-mails); ``clinical`` is the export's coded vocabulary.
    """

    def __init__(self, stop_words: frozenset[str] = frozenset()) -> None:
        self._by_id: dict[str, PatientInfo] = {}
        self.persons = PersonIndex(stop_words)
        self.clinical = ClinicalVocabulary(stop_words)
        self.clinician_terms: list[Term] = []
        self._related: list[dict[str, Any]] = []
        self._clinicians = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, patient: dict[str, Any]) -> PatientInfo | None:
        """Remember a Patient resource (one without an id cannot be referenced; it is skipped)."""
        pid = patient.get("id")
        if not isinstance(pid, str) or pid in self._by_id:
            return self._by_id.get(pid) if isinstance(pid, str) else None
        ordinal = len(self._by_id) + 1
        terms = tuple(identifying_terms(patient, ordinal))
        quasi = tuple(t for t in identifying_terms(patient, ordinal, quasi=True) if t not in terms)
        birth = patient.get("birthDate")
        info = PatientInfo(
            ordinal, _language(patient), terms, quasi, birth if isinstance(birth, str) else None
        )
        self._by_id[pid] = info
        for name in patient.get("name") or []:
            self.persons.add(Person("patient", ordinal, *name_parts(name)))
        for contact in patient.get("contact") or []:
            if isinstance(contact, dict):
                self.persons.add(Person("relative", ordinal, *name_parts(contact.get("name"))))
        return info

    def add_context(self, resource: dict[str, Any]) -> None:
        """Take what text scrubbing needs from any resource of :data:`CONTEXT_TYPES`."""
        kind = resource.get("resourceType")
        if kind == "Patient":
            self.add(resource)
        elif kind == "RelatedPerson":
            self._related.append(resource)
        elif kind == "Practitioner":
            self._clinicians += 1
            for name in resource.get("name") or []:
                given, family = name_parts(name)
                self.persons.add(Person("clinician", self._clinicians, given, family))
                for first in given[:1]:
                    for last in family[:1]:
                        for text in (f"{first} {last}", f"{last} {first}"):
                            self.clinician_terms.append(
                                Term("PERSON", text, self._clinicians, "clinician")
                            )
            self.clinician_terms.extend(contact_terms(resource, self._clinicians, "clinician"))
        elif kind in CLINICAL_TYPES:
            self.clinical.add_terms(coded_texts(resource))

    def finish(self) -> None:
        """Attach the RelatedPersons read to their patients (they may come before them)."""
        for related in self._related:
            reference = (related.get("patient") or {}).get("reference")
            info = self.get(patient_id_of(reference, None))
            if info is None:
                continue
            for name in related.get("name") or []:
                self.persons.add(Person("relative", info.ordinal, *name_parts(name)))
            extra = tuple(identifying_terms(related, info.ordinal, quasi=False, with_id=False))
            info.terms = info.terms + tuple(t for t in extra if t not in info.terms)
            quasi = identifying_terms(related, info.ordinal, quasi=True, with_id=False)
            info.quasi_terms = info.quasi_terms + tuple(t for t in quasi if t not in extra)
        self._related.clear()

    def get(self, patient_id: str | None) -> PatientInfo | None:
        """The patient with this id, if the input has their Patient resource."""
        return None if patient_id is None else self._by_id.get(patient_id)

    def all_terms(self) -> Iterator[Term]:
        """Every identifying term of every patient."""
        for info in self._by_id.values():
            yield from info.terms


def _first_patient_reference(value: Any, bundle_urls: BundleUrls | None, depth: int) -> str | None:
    if depth > 6:
        return None
    if isinstance(value, dict):
        found = patient_id_of(value.get("reference"), bundle_urls)
        if found is not None:
            return found
        for key, child in value.items():
            if key != "contained" and isinstance(child, dict | list):
                found = _first_patient_reference(child, bundle_urls, depth + 1)
                if found is not None:
                    return found
    elif isinstance(value, list):
        for item in value:
            found = _first_patient_reference(item, bundle_urls, depth + 1)
            if found is not None:
                return found
    return None


def compartment_patient(
    resource: dict[str, Any], bundle_urls: BundleUrls | None = None
) -> str | None:
    """The (original) id of the patient whose compartment holds this resource, if any.

    >>> compartment_patient({"resourceType": "Encounter", "subject": {"reference": "Patient/p1"}})
    'p1'
    """
    if resource.get("resourceType") == "Patient":
        pid = resource.get("id")
        return pid if isinstance(pid, str) else None
    for name in _COMPARTMENT_ELEMENTS:
        value = resource.get(name)
        if isinstance(value, dict):
            reference = value.get("reference")
            if (
                isinstance(reference, str)
                and reference.startswith("Patient/")
                and "/" not in reference[8:]
            ):
                return reference[8:]  # the common case, without parsing
            found = patient_id_of(reference, bundle_urls)
            if found is not None:
                return found
    return _first_patient_reference(resource, bundle_urls, 0)
