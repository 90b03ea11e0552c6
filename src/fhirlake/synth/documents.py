"""Clinical notes: a DocumentReference with the note text as a base64 attachment.

The text comes from the locale's note template and repeats the patient's identifying
details on purpose (they are the canaries of the privacy tests).
"""

from __future__ import annotations

import base64
from typing import Any

from fhirlake.synth.builder import ResourceBuilder, Vitals
from fhirlake.synth.elements import CLINICAL_NOTE
from fhirlake.synth.locales import NoteFacts
from fhirlake.synth.terminology import CONCEPTS, codeable, label

__all__ = ["Documents"]

_NOTE_KIND = {"urgent": "symptom", "prenatal_initial": "prenatal", "postnatal": "prenatal"}


class Documents(ResourceBuilder):
    """Adds the DocumentReference of the current visit."""

    def _note(self, kind: str, note_type: str, reason: str | None, vitals: Vitals | None) -> None:
        person = self.person
        locale = self.ctx.locale
        clock = self.ctx.clock
        reason_text = None
        if reason in CONCEPTS:
            reason_text = label(reason, self.lang)
        elif reason == "childbirth":
            reason_text = label("proc_childbirth", self.lang)
        facts = NoteFacts(
            when=clock.date(self.visit_ts),
            kind=_NOTE_KIND.get(kind, kind),
            given=person.given,
            family=person.family,
            sex=person.sex,
            age=int(self.age),
            birth_date=person.birth_date,
            address_line=person.address_line,
            city=person.city.name,
            state=person.city.state,
            postal_code=person.postal_code,
            phone=person.phone,
            identity=person.identity.truth,
            practitioner=self.practitioner.display,
            organization=self.organization.name,
            reason=reason_text,
            problems=tuple(self.problems),
            medications=tuple(label(m, self.lang) for m in self.meds),
            allergies=tuple(label(a, self.lang) for a in self.allergies) if self.allergies_recorded else (),
            vitals=vitals,
            months_to_next=self.rng.choice((1, 3, 6, 12)),
        )
        text = locale.render_note(self.rng, facts)
        document: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "id": self._id(),
            "meta": self._meta("DocumentReference"),
            "status": "current",
            "docStatus": "final",
            "type": self._cc(note_type),
        }
        if self.lang == "en":
            document["category"] = CLINICAL_NOTE
        document.update(
            {
                "subject": self.subject,
                "date": self.issued,
                "author": [self.practitioner.reference],
                "custodian": self.organization.reference,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": locale.language,
                            "data": base64.b64encode(text.encode()).decode("ascii"),
                            "title": codeable(note_type, self.lang)["text"],
                            "creation": self.effective,
                        }
                    }
                ],
                "context": {"encounter": [self.encounter_ref], "period": {"start": self.effective}},
            }
        )
        self._add(document)
