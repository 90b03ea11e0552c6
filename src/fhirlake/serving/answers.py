"""What the server answers: typed models, so the MCP tools publish an output schema.

No model has a field for a patient or resource key; every patient count is a
:class:`~fhirlake.serving.suppression.Count` (a number, or ``"<k"``), and every answer says in
``note`` whether something was suppressed.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from fhirlake.serving.suppression import Count

__all__ = [
    "BreakdownAnswer", "Cell", "CodeMatch", "CodeSearchAnswer", "ColumnAnswer", "CompareAnswer", "CountAnswer",
    "Freshness", "SavedCohortAnswer", "SqlAnswer", "ValueCount", "ViewDescription", "ViewSummary", "ViewsAnswer",
]


class Freshness(BaseModel):
    """Which snapshot of the lake answered."""

    snapshot_id: int | None
    reference_time: str | None = Field(description="The export's transactionTime the snapshot reflects (UTC).")
    built_at: str | None = Field(description="When the catalog of the snapshot was built (UTC).")


class ViewSummary(BaseModel):
    name: str
    description: str
    patients: Count
    columns: int


class ViewsAnswer(BaseModel):
    freshness: Freshness
    k: int = Field(description="Counts under k are suppressed.")
    views: list[ViewSummary]


class ValueCount(BaseModel):
    value: str | None
    patients: Count


class ColumnAnswer(BaseModel):
    name: str
    type: str
    description: str
    key: bool = Field(description="A patient or resource key: may be counted or joined on, never shown or grouped by.")
    values: list[ValueCount] | None = Field(None, description="For low-cardinality columns: the values held by at least k patients, with their patient counts "
                                             "(rarer values are left out, and the note says so).")


class ViewDescription(BaseModel):
    name: str
    description: str
    freshness: Freshness
    patients: Count
    columns: list[ColumnAnswer]
    note: str


class CodeMatch(BaseModel):
    criterion: str = Field(description="The cohort criterion kind to use the code with (condition, observation...).")
    view: str
    system: str | None
    code: str
    display: str | None
    patients: Count


class CodeSearchAnswer(BaseModel):
    text: str
    matches: list[CodeMatch]
    note: str


class CountAnswer(BaseModel):
    patients: Count
    index_date: str
    note: str


class Cell(BaseModel):
    dimensions: dict[str, str | None]
    patients: Count
    with_value: Count | None = None
    mean: float | None = None
    median: float | None = None
    p25: float | None = None
    p75: float | None = None


class BreakdownAnswer(BaseModel):
    total: Count
    index_date: str
    dimensions: list[str]
    cells: list[Cell]
    suppressed_cells: int
    note: str


class CompareAnswer(BaseModel):
    a: Count
    b: Count
    both: Count
    only_a: Count
    only_b: Count
    note: str


class SavedCohortAnswer(BaseModel):
    name: str
    patients: Count
    note: str


class SqlAnswer(BaseModel):
    columns: list[str]
    rows: list[list[str | int | float | bool | None]]
    suppressed_rows: int
    truncated: bool
    note: str
