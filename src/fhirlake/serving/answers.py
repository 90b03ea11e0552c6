"""What the server answers: typed models, so the MCP tools publish an output schema.

No model has a field for a patient or resource key; every patient count is a
:class:`~fhirlake.serving.suppression.Count` (a noisy number, or ``"<k"``); every answer says in
``note`` whether something was suppressed, and in ``privacy`` what it spent and how much noise
each statistic carries.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from fhirlake.serving.suppression import Count

__all__ = [
    "BreakdownAnswer", "Cell", "CodeMatch", "CodeSearchAnswer", "ColumnAnswer", "CompareAnswer", "CountAnswer",
    "Freshness", "NoiseInfo", "PrivacyInfo", "SavedCohortAnswer", "SqlAnswer", "ValueCount", "ViewDescription", "ViewSummary", "ViewsAnswer",
]


class NoiseInfo(BaseModel):
    """The noise one statistic carries: Laplace (or discrete Laplace) scale b: |noise| > t with
    probability exp(-t/b); for a quantile, the exponential mechanism's scale."""

    statistic: str
    epsilon: float
    scale: float


class PrivacyInfo(BaseModel):
    """What a call spent, and what its client has left."""

    epsilon: float = Field(description="Spent by this call (0 when the answer was released before and is given again).")
    epsilon_left: float = Field(description="The client's budget left in this period.")
    period: str
    cached: bool = Field(description="True when this exact question was answered before: the same answer, no cost.")
    noise: list[NoiseInfo]


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
    privacy: PrivacyInfo


class ValueCount(BaseModel):
    value: str | None
    patients: Count


class ColumnAnswer(BaseModel):
    name: str
    type: str
    description: str
    key: bool = Field(description="A patient or resource key: may be counted or joined on, never shown or grouped by.")
    role: str | None = Field(None, description="What run_aggregate_sql may do with it: dimension (group, filter), measure "
                             "(aggregate, filter), date (filter, year()/month()), key, quasi-identifier or text (not usable).")
    bounds: list[float] | None = Field(None, description="A measure's values are clamped to these bounds before noise.")
    values: list[ValueCount] | None = Field(None, description="For low-cardinality columns: the values held by at least k patients, with their patient counts "
                                             "(rarer values are left out, and the note says so).")


class ViewDescription(BaseModel):
    name: str
    description: str
    freshness: Freshness
    patients: Count
    columns: list[ColumnAnswer]
    note: str
    privacy: PrivacyInfo


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
    privacy: PrivacyInfo


class CountAnswer(BaseModel):
    patients: Count
    index_date: str
    note: str
    privacy: PrivacyInfo


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
    privacy: PrivacyInfo


class CompareAnswer(BaseModel):
    a: Count
    b: Count
    both: Count
    only_a: Count
    only_b: Count
    note: str
    privacy: PrivacyInfo


class SavedCohortAnswer(BaseModel):
    name: str
    patients: Count
    note: str
    privacy: PrivacyInfo


class SqlAnswer(BaseModel):
    columns: list[str]
    rows: list[list[str | int | float | bool | None]]
    suppressed_rows: int
    truncated: bool
    note: str
    privacy: PrivacyInfo
