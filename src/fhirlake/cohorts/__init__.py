"""Cohort definitions (a typed, JSON-schema'd model) and their compiler to sqlglot trees.

A :class:`CohortDefinition` says who is in a cohort: demographics and age at an index date,
conditions, observations (with value comparisons and units), medications, procedures,
encounters and immunizations, each in a time window, combined with and/or/not, or a saved
cohort by name. :class:`CohortCompiler` turns it into a query of the patient key over the
gold views; the serving layer scopes and runs it.
"""

from __future__ import annotations

from fhirlake.cohorts.compiler import DIMENSIONS, CohortCompiler
from fhirlake.cohorts.model import (
    AllOf,
    AnyOf,
    CohortDefinition,
    CohortRef,
    ConditionCriterion,
    Criterion,
    Demographics,
    EncounterCriterion,
    ImmunizationCriterion,
    Measure,
    MedicationCriterion,
    NotCriterion,
    ObservationCriterion,
    ProcedureCriterion,
    ValueFilter,
    Window,
)

__all__ = [
    "DIMENSIONS",
    "AllOf",
    "AnyOf",
    "CohortCompiler",
    "CohortDefinition",
    "CohortRef",
    "ConditionCriterion",
    "Criterion",
    "Demographics",
    "EncounterCriterion",
    "ImmunizationCriterion",
    "Measure",
    "MedicationCriterion",
    "NotCriterion",
    "ObservationCriterion",
    "ProcedureCriterion",
    "ValueFilter",
    "Window",
]
