"""Measurements: vital signs, smoking status, laboratory results and their reports.

Values come from the patient's :class:`~fhirlake.synth.health.Health` at the age of the
visit, so they carry the disease signal (high HbA1c for diabetics, high blood pressure for
hypertensives...). Labs have UCUM units, a reference range and an H/L/N interpretation;
panels (metabolic, lipid, blood count) are grouped under a DiagnosticReport.
"""

from __future__ import annotations

from typing import Any

from fhirlake.synth.builder import ResourceBuilder, Vitals
from fhirlake.synth.elements import (
    LAB_REPORT,
    OBS_LABORATORY,
    OBS_SOCIAL_HISTORY,
    OBS_VITAL_SIGNS,
    interpretation,
    lab_reference_range,
    quantity,
)
from fhirlake.synth.terminology import LABS

__all__ = ["Measurements"]

_BMP = ("lab_glucose", "lab_bun", "lab_creatinine", "lab_egfr", "lab_calcium", "lab_sodium", "lab_potassium", "lab_chloride", "lab_co2")


class Measurements(ResourceBuilder):
    """Adds Observations and DiagnosticReports for the current visit."""

    def _vitals(self, full: bool) -> Vitals:
        rng = self.rng
        h = self.health
        age = self.age
        height = round(h.height(age) + rng.gauss(0, 0.4), 1)
        bmi = h.bmi(age) + rng.gauss(0, 0.25)
        weight = round(bmi * (height / 100) ** 2, 1)
        bmi = round(weight / (height / 100) ** 2, 1)
        issued = self.issued
        if full:
            self._quantity_obs("obs_height", OBS_VITAL_SIGNS, height, "cm", issued)
        self._quantity_obs("obs_weight", OBS_VITAL_SIGNS, weight, "kg", issued)
        if full and age >= 2:
            self._quantity_obs("obs_bmi", OBS_VITAL_SIGNS, bmi, "kg/m2", issued)
        if full and age < 3:
            head = 34.5 + 14.5 * (1 - 2.718281828 ** (-1.4 * age)) + rng.gauss(0, 0.5)
            self._quantity_obs("obs_head", OBS_VITAL_SIGNS, round(head, 1), "cm", issued)
        sbp, dbp = h.blood_pressure(rng, age, bmi)
        sbp, dbp = float(round(sbp)), float(round(dbp))
        if age >= 3:
            self._blood_pressure(int(sbp), int(dbp))
        hr = float(round(h.heart_rate(rng, age)))
        self._quantity_obs("obs_heart_rate", OBS_VITAL_SIGNS, int(hr), "/min", issued)
        if full:
            rr = 40 if age < 1 else 24 if age < 6 else 18 if age < 13 else 15
            self._quantity_obs("obs_resp_rate", OBS_VITAL_SIGNS, rr + rng.randint(-2, 2), "/min", issued)
            if age >= 3:
                self._quantity_obs("obs_pain", OBS_VITAL_SIGNS, rng.choice((0, 0, 0, 1, 1, 2, 3)), "{score}", issued)
            if rng.random() < 0.3:
                self._quantity_obs("obs_temperature", OBS_VITAL_SIGNS, round(36.8 + rng.gauss(0, 0.25), 1), "Cel", issued)
            if age >= 12:
                self._smoking_status()
        return sbp, dbp, hr, weight, bmi

    def _blood_pressure(self, sbp: int, dbp: int) -> None:
        self._add(
            {
                "resourceType": "Observation",
                "id": self._id(),
                "meta": self._meta("Observation:obs_bp"),
                "status": "final",
                "category": OBS_VITAL_SIGNS,
                "code": self._cc("obs_bp"),
                "subject": self.subject,
                "encounter": self.encounter_ref,
                "effectiveDateTime": self.effective,
                "issued": self.issued,
                "component": [
                    {"code": self._cc("obs_systolic"), "valueQuantity": quantity(sbp, "mm[Hg]")},
                    {"code": self._cc("obs_diastolic"), "valueQuantity": quantity(dbp, "mm[Hg]")},
                ],
            }
        )

    def _smoking_status(self) -> None:
        status = self.health.smoking_at(self.age)
        self._add(
            {
                "resourceType": "Observation",
                "id": self._id(),
                "meta": self._meta("Observation:smoking"),
                "status": "final",
                "category": OBS_SOCIAL_HISTORY,
                "code": self._cc("obs_smoking"),
                "subject": self.subject,
                "encounter": self.encounter_ref,
                "effectiveDateTime": self.effective,
                "issued": self.issued,
                "valueCodeableConcept": self._cc("smoking_" + status),
            }
        )

    def _lab(self, key: str, value: float) -> dict[str, Any]:
        lab = LABS[key]
        shown: float = round(value, lab.decimals) if lab.decimals else round(value)
        observation = self._quantity_obs(key, OBS_LABORATORY, shown, lab.unit, self.issued_lab)
        observation["interpretation"] = interpretation(key, self.person.sex, shown)
        observation["referenceRange"] = lab_reference_range(key, self.person.sex)
        return observation

    def _hba1c(self) -> None:
        self._lab("lab_hba1c", self.health.hba1c(self.rng, self.age))

    def _report(self, panel: str, observations: list[dict[str, Any]]) -> None:
        self._add(
            {
                "resourceType": "DiagnosticReport",
                "id": self._id(),
                "meta": self._meta("DiagnosticReport"),
                "status": "final",
                "category": LAB_REPORT,
                "code": self._cc(panel),
                "subject": self.subject,
                "encounter": self.encounter_ref,
                "effectiveDateTime": self.effective,
                "issued": self.issued_lab,
                "performer": [self.organization.reference],
                "result": [{"reference": f"Observation/{o['id']}"} for o in observations],
            }
        )

    def _wellness_labs(self) -> None:
        rng = self.rng
        age = self.age
        if age < 18:
            return
        c = self.conditions
        metabolic = "diabetes" in c or "prediabetes" in c
        if metabolic or (age >= 35 and rng.random() < 0.2):
            self._hba1c()
        if rng.random() < (0.7 if metabolic or "ckd" in c or "hypertension" in c else 0.25):
            self._basic_metabolic_panel()
        if rng.random() < (0.8 if metabolic or "hyperlipidemia" in c or "chd" in c else 0.2 if age >= 20 else 0.0):
            self._lipid_panel()
        if rng.random() < (0.8 if "anemia" in c or "ckd" in c else 0.12):
            self._blood_count()

    def _basic_metabolic_panel(self) -> None:
        h, rng, age = self.health, self.rng, self.age
        creatinine = h.creatinine(rng, age)
        ckd = h.has("ckd", age)
        values = {
            "lab_glucose": h.glucose(rng, h.hba1c(rng, age)),
            "lab_bun": 14 + rng.gauss(0, 3.5) + (12 if ckd else 0),
            "lab_creatinine": creatinine,
            "lab_egfr": h.egfr(round(creatinine, 2), age),
            "lab_calcium": 9.4 + rng.gauss(0, 0.35),
            "lab_sodium": 140 + rng.gauss(0, 2),
            "lab_potassium": 4.2 + rng.gauss(0, 0.3) + (0.5 if ckd else 0),
            "lab_chloride": 103 + rng.gauss(0, 2.2),
            "lab_co2": 25 + rng.gauss(0, 2) - (2 if ckd else 0),
        }
        self._report("panel_bmp", [self._lab(k, values[k]) for k in _BMP])

    def _lipid_panel(self) -> None:
        chol, tg, ldl, hdl = self.health.lipids(self.rng, self.age, self.health.bmi(self.age))
        observations = [
            self._lab("lab_cholesterol", chol),
            self._lab("lab_triglycerides", tg),
            self._lab("lab_ldl", ldl),
            self._lab("lab_hdl", hdl),
        ]
        self._report("panel_lipid", observations)

    def _blood_count(self) -> None:
        rng = self.rng
        hgb = self.health.hemoglobin(rng, self.age)
        anemic = self.health.has("anemia", self.age)
        mcv = (76 if anemic else 90) + rng.gauss(0, 3.5)
        hct = hgb * 2.95 + rng.gauss(0, 0.8)
        rbc = hct / mcv * 10
        observations = [
            self._lab("lab_wbc", 7.0 + rng.gauss(0, 1.6)),
            self._lab("lab_rbc", rbc),
            self._lab("lab_hemoglobin", hgb),
            self._lab("lab_hematocrit", hct),
            self._lab("lab_mcv", mcv),
            self._lab("lab_mch", hgb / rbc * 10),
            self._lab("lab_mchc", hgb / hct * 100),
            self._lab("lab_rdw", 42 + rng.gauss(0, 2.5) + (4 if anemic else 0)),
            self._lab("lab_platelets", 250 + rng.gauss(0, 50)),
        ]
        self._report("panel_cbc", observations)
