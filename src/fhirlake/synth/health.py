"""The hidden health of one person: body size, risk factors, and when each disease begins.

This is where the signal a cohort analysis should find is put in. Chronic diseases start at
an age drawn from a logistic cumulative incidence (so prevalence rises with age), with risk
factors shifting it (obesity brings hypertension and diabetes earlier; diabetes and
hypertension raise coronary disease and kidney disease). Measurements are then functions of
that state: diabetics have a high HbA1c and glucose, hypertensives a high blood pressure
(lower once treated), hyperlipidemia a high LDL, kidney disease a high creatinine and low
eGFR, anaemia a low haemoglobin. Values carry person-level and visit-level noise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from itertools import pairwise

__all__ = ["CHRONIC_ORDER", "Health", "make_health"]

#: Chronic conditions in the order a note lists them.
CHRONIC_ORDER = (
    "hypertension", "prediabetes", "diabetes", "hyperlipidemia", "obesity", "asthma", "copd",
    "chd", "afib", "ckd", "osteoarthritis", "anemia", "chronic_sinusitis", "alzheimers",
)

# Fraction of adult height reached at each age (a smoothed growth curve).
_GROWTH = ((0, 0.29), (1, 0.43), (2, 0.50), (5, 0.62), (10, 0.79), (14, 0.92), (17, 0.99), (18, 1.0))
# Median BMI by age for children.
_CHILD_BMI = ((0, 13.5), (1, 17.2), (3, 16.0), (6, 15.4), (10, 17.0), (14, 19.8), (18, 21.8))


def _interpolate(table: tuple[tuple[float, float], ...], x: float) -> float:
    if x <= table[0][0]:
        return table[0][1]
    for (x0, y0), (x1, y1) in pairwise(table):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[-1][1]


def _logistic_onset(rng: random.Random, pmax: float, a50: float, scale: float) -> float | None:
    """Age at onset under ``F(a) = pmax / (1 + exp(-(a - a50) / scale))``; None means never."""
    u = rng.random()
    if u >= pmax:
        return None
    q = u / pmax
    return a50 + scale * math.log(q / (1.0 - q))


@dataclass(slots=True)
class Health:
    """Latent state of one person; every age argument is in years."""

    sex: str
    adult_height: float
    bmi20: float
    child_bmi_offset: float
    smoking: str  # "never", "current" or "former"
    quit_age: float
    onsets: dict[str, float] = field(default_factory=dict)
    bp_offset: float = 0.0
    chol_base: float = 185.0
    hdl_base: float = 55.0
    tg_base: float = 115.0
    hr_base: float = 72.0
    a1c_base: float = 5.3
    hgb_base: float = 14.0
    creat_base: float = 0.9

    def has(self, condition: str, age: float) -> bool:
        """Whether ``condition`` has begun by ``age``."""
        onset = self.onsets.get(condition)
        return onset is not None and onset <= age

    def treated(self, condition: str, age: float) -> bool:
        """Whether the condition is known for more than six months (so under treatment)."""
        onset = self.onsets.get(condition)
        return onset is not None and onset + 0.5 <= age

    def smoking_at(self, age: float) -> str:
        """Smoking status at ``age``: never, current or former."""
        if self.smoking == "never" or age < 16:
            return "never"
        if self.smoking == "former" and age >= self.quit_age:
            return "former"
        return "current"

    def height(self, age: float) -> float:
        """Height in cm."""
        h = self.adult_height * _interpolate(_GROWTH, age)
        if age > 70:
            h -= 0.15 * (age - 70)
        return h

    def bmi(self, age: float) -> float:
        """Body mass index in kg/m2."""
        if age < 18:
            return _interpolate(_CHILD_BMI, age) + self.child_bmi_offset * min(1.0, age / 6)
        drift = 0.16 * (min(age, 55.0) - 20.0) - 0.06 * max(0.0, age - 70.0)
        return max(16.0, self.bmi20 + drift)

    def blood_pressure(self, rng: random.Random, age: float, bmi: float) -> tuple[float, float]:
        """(systolic, diastolic) in mm[Hg] at one visit."""
        if age < 18:
            sbp = 90 + 1.4 * age + rng.gauss(0, 6)
            dbp = 55 + 0.9 * age + rng.gauss(0, 5)
            return sbp, dbp
        sbp = 112 + 0.42 * min(age - 18, 60) + 0.7 * (bmi - 25) + self.bp_offset + rng.gauss(0, 7)
        dbp = 71 + 0.10 * min(age - 18, 40) + 0.35 * (bmi - 25) + self.bp_offset / 2 + rng.gauss(0, 5)
        if self.has("hypertension", age):
            lift = 14.0 if self.treated("hypertension", age) else 26.0
            sbp += lift
            dbp += lift / 2.2
        return min(max(sbp, 85.0), 220.0), min(max(dbp, 45.0), 130.0)

    def heart_rate(self, rng: random.Random, age: float) -> float:
        """Beats per minute."""
        if age < 1:
            base = 130.0
        elif age < 12:
            base = 100.0 - 2.5 * age
        else:
            base = self.hr_base
        if self.has("afib", age):
            return base + 18 + rng.gauss(0, 14)
        return base + rng.gauss(0, 6)

    def hba1c(self, rng: random.Random, age: float) -> float:
        """Hemoglobin A1c in %."""
        if self.has("diabetes", age):
            base = 8.4 if not self.treated("diabetes", age) else 7.3
            return min(max(base + rng.gauss(0, 0.8), 6.5), 13.5)
        if self.has("prediabetes", age):
            return min(max(6.0 + rng.gauss(0, 0.18), 5.7), 6.4)
        return min(max(self.a1c_base + 0.004 * (age - 40) + rng.gauss(0, 0.12), 4.2), 5.6)

    def glucose(self, rng: random.Random, hba1c: float) -> float:
        """Fasting glucose in mg/dL, consistent with the HbA1c of the same visit."""
        return max(60.0, 28.7 * hba1c - 58 + rng.gauss(0, 9))

    def lipids(self, rng: random.Random, age: float, bmi: float) -> tuple[float, float, float, float]:
        """(total cholesterol, triglycerides, LDL, HDL) in mg/dL."""
        chol = self.chol_base + 0.4 * max(0.0, age - 20) + rng.gauss(0, 10)
        if self.has("hyperlipidemia", age):
            chol += 30 if self.treated("hyperlipidemia", age) else 65
        hdl = self.hdl_base - 0.5 * (bmi - 25) + rng.gauss(0, 4)
        tg = self.tg_base + 3 * (bmi - 25) + rng.gauss(0, 20)
        if self.has("diabetes", age):
            tg += 55
        if self.has("hyperlipidemia", age):
            tg += 40
        hdl = max(hdl, 22.0)
        tg = max(tg, 40.0)
        ldl = max(chol - hdl - tg / 5, 30.0)
        return chol, tg, ldl, hdl

    def creatinine(self, rng: random.Random, age: float) -> float:
        """Serum creatinine in mg/dL."""
        value = self.creat_base + 0.002 * max(0.0, age - 40) + rng.gauss(0, 0.07)
        if self.has("ckd", age):
            value += 0.8 + rng.gauss(0, 0.15)
        return max(value, 0.3)

    def egfr(self, creatinine: float, age: float) -> float:
        """eGFR in mL/min/1.73m2 by the CKD-EPI 2021 equation."""
        female = self.sex == "female"
        kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
        ratio = creatinine / kappa
        value: float = 142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.2 * 0.9938 ** max(age, 18)
        return value * 1.012 if female else value

    def hemoglobin(self, rng: random.Random, age: float) -> float:
        """Haemoglobin in g/dL."""
        value = self.hgb_base + rng.gauss(0, 0.4)
        if self.has("anemia", age):
            value -= 3.0
        if self.has("ckd", age):
            value -= 1.0
        return max(value, 6.0)


def _child_offset(rng: random.Random) -> float:
    return rng.gauss(0, 1.4)


def make_health(rng: random.Random, sex: str, end_age: float) -> Health:
    """Draw the latent health of one person of ``sex`` followed until ``end_age``."""
    male = sex == "male"
    smoker = rng.random() < (0.38 if male else 0.30)
    smoking = "never"
    quit_age = 200.0
    if smoker:
        smoking = "former" if rng.random() < 0.55 else "current"
        quit_age = rng.uniform(25, 60) if smoking == "former" else 200.0
    h = Health(
        sex=sex,
        adult_height=rng.gauss(176.5, 7.0) if male else rng.gauss(163.0, 6.5),
        bmi20=min(max(rng.gauss(23.6, 3.9), 17.0), 44.0),
        child_bmi_offset=_child_offset(rng),
        smoking=smoking,
        quit_age=quit_age,
        bp_offset=rng.gauss(0, 6),
        chol_base=rng.gauss(172, 20),
        hdl_base=rng.gauss(48 if male else 58, 9),
        tg_base=rng.gauss(105, 25),
        hr_base=rng.gauss(71, 6),
        a1c_base=rng.gauss(5.2, 0.15),
        hgb_base=rng.gauss(15.1, 0.8) if male else rng.gauss(13.5, 0.8),
        creat_base=rng.gauss(0.98, 0.1) if male else rng.gauss(0.78, 0.09),
    )
    _draw_onsets(rng, h, end_age)
    return h


def _draw_onsets(rng: random.Random, h: Health, end_age: float) -> None:
    obese_age = 20.0 + (30.0 - h.bmi20) / 0.16 if h.bmi20 < 30 else 18.0
    obese = obese_age <= 55.0
    smoker = h.smoking != "never"
    onset: dict[str, float | None] = {}
    if obese:
        onset["obesity"] = max(obese_age, 18.0)
    onset["hypertension"] = _logistic_onset(rng, 0.8, 59 - 9 * obese - 2 * smoker, 10)
    diabetes = _logistic_onset(rng, 0.24 + 0.22 * obese, 62 - 7 * obese, 9)
    onset["diabetes"] = diabetes
    if diabetes is not None:
        onset["prediabetes"] = diabetes - rng.uniform(2, 6)
    else:
        onset["prediabetes"] = _logistic_onset(rng, 0.22 + 0.1 * obese, 56, 10)
    onset["hyperlipidemia"] = _logistic_onset(rng, 0.5 + 0.1 * obese, 58, 10)
    has_htn = onset["hypertension"] is not None
    onset["chd"] = _logistic_onset(rng, 0.12 + 0.1 * has_htn + 0.1 * (diabetes is not None) + 0.08 * smoker, 71, 8)
    onset["afib"] = _logistic_onset(rng, 0.16, 79, 7)
    if smoker:
        onset["copd"] = _logistic_onset(rng, 0.35, 64, 8)
    causes = [a for a in (onset["hypertension"], diabetes) if a is not None]
    if causes and rng.random() < 0.3:
        onset["ckd"] = max(causes) + rng.uniform(3, 12)
    if rng.random() < 0.09:
        onset["asthma"] = rng.uniform(2, 12)
    onset["osteoarthritis"] = _logistic_onset(rng, 0.3 + 0.1 * obese, 66, 9)
    if rng.random() < (0.12 if h.sex == "female" else 0.06):
        onset["anemia"] = rng.uniform(15, 85)
    if rng.random() < 0.07:
        onset["chronic_sinusitis"] = rng.uniform(18, 70)
    onset["alzheimers"] = _logistic_onset(rng, 0.3, 87, 5)
    minimum = {"asthma": 2.0, "obesity": 18.0}
    for name, age in onset.items():
        if age is None:
            continue
        age = max(age, minimum.get(name, 18.0))
        if age <= end_age:
            h.onsets[name] = age
