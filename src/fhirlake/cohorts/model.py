"""The cohort definition model: what a model (or a person) sends to count a cohort.

Pydantic models, so the MCP tools publish their JSON schema and reject a malformed definition
with the path of the bad field. Criteria are tagged by ``kind``::

    {"index_date": "2025-01-01",
     "criteria": {"kind": "and", "criteria": [
        {"kind": "demographics", "sex": ["female"], "age_min": 61},
        {"kind": "condition", "codes": ["44054006"]},
        {"kind": "observation", "codes": ["4548-4"], "value": {"op": "gt", "value": 8, "unit": "%"},
         "window": {"start": "2024-01-01", "end": "2024-12-31"}}]}}
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AllOf", "AnyOf", "CohortDefinition", "CohortRef", "ConditionCriterion", "Criterion", "Demographics",
    "EncounterCriterion", "ImmunizationCriterion", "Measure", "MedicationCriterion", "NotCriterion",
    "ObservationCriterion", "ProcedureCriterion", "ValueFilter", "Window",
]

Codes = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Model):
    """When the event happened: between ``start`` and ``end`` (inclusive dates), and/or within
    ``days_before_index`` days before the index date."""

    start: date | None = Field(None, description="First day (inclusive).")
    end: date | None = Field(None, description="Last day (inclusive).")
    days_before_index: int | None = Field(None, ge=0, le=36500, description="Within this many days up to the index date.")


class ValueFilter(_Model):
    """A comparison of an observation's numeric value (``between``: value ≤ x ≤ high)."""

    op: Literal["gt", "ge", "lt", "le", "eq", "between"]
    value: float
    high: float | None = Field(None, description="Upper bound, for 'between'.")
    unit: str | None = Field(None, max_length=50, description="UCUM unit the value must be in (e.g. '%', 'mg/dL').")

    @model_validator(mode="after")
    def _high_for_between(self) -> ValueFilter:
        if (self.op == "between") != (self.high is not None):
            raise ValueError("'high' is required with op 'between' and only then")
        return self


class Demographics(_Model):
    """Sex, age at the index date (inclusive bounds), region, country, deceased."""

    kind: Literal["demographics"] = "demographics"
    sex: list[Literal["female", "male", "other", "unknown"]] | None = None
    age_min: int | None = Field(None, ge=0, le=150)
    age_max: int | None = Field(None, ge=0, le=150)
    regions: list[str] | None = None
    countries: list[str] | None = None
    deceased: bool | None = None


class _Event(_Model):
    window: Window | None = None
    min_count: int = Field(1, ge=1, le=1000, description="At least this many matching events.")


class ConditionCriterion(_Event):
    """A condition (diagnosis) with one of ``codes`` (usually SNOMED CT), dated by its onset."""

    kind: Literal["condition"] = "condition"
    codes: Codes


class ObservationCriterion(_Event):
    """An observation or observation component with one of ``codes`` (usually LOINC), optionally
    with a value comparison."""

    kind: Literal["observation"] = "observation"
    codes: Codes
    value: ValueFilter | None = None


class MedicationCriterion(_Event):
    """A medication request with one of ``codes`` (usually RxNorm), dated by authoredOn."""

    kind: Literal["medication"] = "medication"
    codes: Codes


class ProcedureCriterion(_Event):
    """A procedure with one of ``codes`` (usually SNOMED CT), dated by when it was performed."""

    kind: Literal["procedure"] = "procedure"
    codes: Codes


class ImmunizationCriterion(_Event):
    """An immunization with one of the CVX ``codes``."""

    kind: Literal["immunization"] = "immunization"
    codes: Codes


class EncounterCriterion(_Event):
    """An encounter of one of ``class_codes`` (AMB, EMER, IMP...), ``type_codes`` or ``reason_codes``."""

    kind: Literal["encounter"] = "encounter"
    class_codes: list[str] | None = None
    type_codes: list[str] | None = None
    reason_codes: list[str] | None = None


class CohortRef(_Model):
    """The patients of a saved cohort."""

    kind: Literal["cohort"] = "cohort"
    name: str = Field(min_length=1, max_length=100)


class AllOf(_Model):
    """Every criterion holds (AND)."""

    kind: Literal["and"] = "and"
    criteria: list[Criterion] = Field(min_length=1, max_length=50)


class AnyOf(_Model):
    """At least one criterion holds (OR)."""

    kind: Literal["or"] = "or"
    criteria: list[Criterion] = Field(min_length=1, max_length=50)


class NotCriterion(_Model):
    """The criterion does not hold (NOT)."""

    kind: Literal["not"] = "not"
    criterion: Criterion


Criterion = Annotated[
    Demographics | ConditionCriterion | ObservationCriterion | MedicationCriterion | ProcedureCriterion
    | ImmunizationCriterion | EncounterCriterion | CohortRef | AllOf | AnyOf | NotCriterion,
    Field(discriminator="kind"),
]


class CohortDefinition(_Model):
    """Who is in the cohort (``criteria``), and the date ages and relative windows count from
    (``index_date``; default: the lake's reference date, its latest export)."""

    criteria: Criterion
    index_date: date | None = None


class Measure(_Model):
    """An observation value to summarise per cell: one value per patient (``per_patient``) of
    the observations with one of ``codes`` in ``window`` (and ``unit``, when given)."""

    codes: Codes
    unit: str | None = Field(None, max_length=50)
    window: Window | None = None
    per_patient: Literal["latest", "mean", "min", "max"] = "latest"
    bounds: tuple[float, float] | None = Field(
        None, description="The range values are clamped to before noise is added (e.g. [4, 15] for an HbA1c in %): "
        "the narrower, the more precise the mean and quantiles. Default: the observation value's declared bounds.")

    @model_validator(mode="after")
    def _ordered_bounds(self) -> Measure:
        if self.bounds is not None and not self.bounds[0] < self.bounds[1]:
            raise ValueError("bounds must be [low, high] with low < high")
        return self


for _model in (AllOf, AnyOf, NotCriterion, CohortDefinition):
    _model.model_rebuild()
