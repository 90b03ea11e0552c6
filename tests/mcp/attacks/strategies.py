"""Hypothesis strategies of the allowed grammar of run_aggregate_sql and of cohort definitions."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fhirlake.lake import Lake

from . import grammar
from .conftest import Catalog, Column


def frequent_values(truth: Lake, catalog: Catalog) -> dict[tuple[str, str], list[Any]]:
    """A few frequent values of each dimension and measure, for literals of the right type."""
    values: dict[tuple[str, str], list[Any]] = {}
    for column in [*catalog.columns("dimension"), *catalog.columns("measure")]:
        if not grammar.scalar_type(column.type):
            continue
        rows = truth.sql(f'SELECT "{column.name}" FROM gold."{column.view}" WHERE "{column.name}" IS NOT NULL '
                         f'GROUP BY 1 ORDER BY count(*) DESC LIMIT 6').to_series().to_list()
        values[(column.view, column.name)] = rows
    return values


def _literal_for(draw: st.DrawFn, column: Column, values: dict[tuple[str, str], list[Any]]) -> str:
    seen = values.get((column.view, column.name)) or []
    upper = column.type.upper()
    if upper == "BOOLEAN":
        return grammar.literal(upper, draw(st.booleans()))
    if upper.startswith(grammar.NUMERIC + grammar.DECIMAL):
        low, high = column.bounds or (0.0, 100.0)
        choices = [*seen, low, high, (low + high) / 2]
        return grammar.literal(upper, draw(st.sampled_from(choices)))
    return grammar.literal(upper, draw(st.sampled_from([*seen, "zz-no-such-value"])))


@st.composite
def condition(draw: st.DrawFn, columns: list[tuple[str, Column]], values: dict[tuple[str, str], list[Any]],
              depth: int = 0) -> str:
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        op = draw(st.sampled_from(["AND", "OR", "NOT"]))
        left = draw(condition(columns, values, depth + 1))
        if op == "NOT":
            return f"NOT ({left})"
        right = draw(condition(columns, values, depth + 1))
        return f"({left}) {op} ({right})" if draw(st.booleans()) else f"{left} {op} {right}"
    alias, column = draw(st.sampled_from(columns))
    ref = f"{alias}.{column.name}"
    lit = lambda: _literal_for(draw, column, values)  # noqa: E731
    numeric = column.type.upper().startswith(grammar.NUMERIC + grammar.DECIMAL)
    forms = ["cmp", "in", "not in", "null"] + (["between", "not between"] if numeric else [])
    form = draw(st.sampled_from(forms))
    if form == "cmp":
        ops = ["=", "<>", "!="] + (["<", "<=", ">", ">="] if numeric or column.type.upper() == "VARCHAR" else [])
        return f"{ref} {draw(st.sampled_from(ops))} {lit()}"
    if form in ("in", "not in"):
        items = ", ".join(dict.fromkeys(lit() for _ in range(draw(st.integers(1, 3)))))
        return f"{ref} {'NOT IN' if form == 'not in' else 'IN'} ({items})"
    if form == "null":
        return f"{ref} IS {draw(st.sampled_from(['NULL', 'NOT NULL']))}"
    low, high = sorted([lit(), lit()], key=lambda s: float(s))
    return f"{ref} {'NOT BETWEEN' if form == 'not between' else 'BETWEEN'} {low} AND {high}"


@st.composite
def valid_query(draw: st.DrawFn, catalog: Catalog, values: dict[tuple[str, str], list[Any]]) -> tuple[str, list[str], list[tuple[str, Column, float]]]:
    """(sql, names of count columns, [(name, measure, quantile)] of quantile columns) from the allowed grammar."""
    views = sorted(v for v, cols in catalog.views.items() if "patient_id" in cols and catalog.columns("dimension", view=v))
    view = draw(st.sampled_from(views))
    join = view != "patient" and draw(st.booleans())
    sources = [("t", view)] + ([("p", "patient")] if join else [])
    dims = [(a, c) for a, v in sources for c in catalog.columns("dimension", view=v) if grammar.scalar_type(c.type)]
    measures = [(a, c) for a, v in sources for c in catalog.columns("measure", view=v) if grammar.scalar_type(c.type)]
    chosen_dims = draw(st.lists(st.sampled_from(dims), max_size=2, unique_by=lambda d: (d[0], d[1].name))) if dims else []
    items = [f"{a}.{c.name} AS d{i}" for i, (a, c) in enumerate(chosen_dims)]
    counts, quantiles = [], []
    n_aggregates = draw(st.integers(1, 3))
    for i in range(n_aggregates):
        kinds = ["count(*)", "count(DISTINCT patient_id)"] + (["count", "sum", "avg", "median", "stddev", "quantile"] if measures else [])
        kind = draw(st.sampled_from(kinds))
        name = f"a{i}"
        if kind == "count(*)":
            items.append(f"count(*) AS {name}")
            counts.append(name)
        elif kind == "count(DISTINCT patient_id)":
            alias = draw(st.sampled_from([a for a, _ in sources]))
            items.append(f"count(DISTINCT {alias}.patient_id) AS {name}")
            counts.append(name)
        else:
            alias, m = draw(st.sampled_from(measures))
            if kind == "quantile":
                q = draw(st.sampled_from(grammar.QUANTILES))
                items.append(f"quantile_cont({alias}.{m.name}, {q}) AS {name}")
                quantiles.append((name, m, q))
            else:
                items.append(f"{kind}({alias}.{m.name}) AS {name}")
                if kind == "count":
                    counts.append(name)
                if kind == "median":
                    quantiles.append((name, m, 0.5))
    frm = f"{view} t"
    if join:
        frm += draw(st.sampled_from([" JOIN patient p ON t.patient_id = p.patient_id", " JOIN patient p ON p.patient_id = t.patient_id",
                                     " JOIN patient p USING (patient_id)", " INNER JOIN patient AS p ON t.patient_id = p.patient_id"]))
    sql = f"SELECT {', '.join(items)} FROM {frm}"
    if draw(st.booleans()) and (dims or measures):
        sql += f" WHERE {draw(condition(dims + measures, values))}"
    if chosen_dims:
        sql += " GROUP BY " + (draw(st.sampled_from(["ALL", ", ".join(f'{a}.{c.name}' for a, c in chosen_dims)])))
        if draw(st.booleans()):
            target = draw(st.sampled_from([*(f"d{i}" for i in range(len(chosen_dims))), *counts, "1"]))
            sql += f" ORDER BY {target} {draw(st.sampled_from(['', 'ASC', 'DESC']))}".rstrip()
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(1, 50))}"
    return sql, counts, quantiles




# ------------------------------------------------------------------------------------------ cohort definitions


def lake_codes(truth: Lake) -> dict[str, list[str]]:
    """Frequent codes of each kind of criterion (and regions), to draw realistic cohort definitions."""
    def top(query: str) -> list[str]:
        return [str(v) for v in truth.sql(query).to_series().to_list() if v is not None]

    return {
        "condition": top("SELECT code FROM gold.condition GROUP BY 1 ORDER BY count(DISTINCT patient_id) DESC LIMIT 12"),
        "observation": top("SELECT code FROM gold.observation WHERE value_quantity IS NOT NULL GROUP BY 1 "
                           "ORDER BY count(DISTINCT patient_id) DESC LIMIT 8"),
        "medication": top("SELECT medication_code FROM gold.medication_request GROUP BY 1 "
                          "ORDER BY count(DISTINCT patient_id) DESC LIMIT 6"),
        "procedure": top("SELECT code FROM gold.procedure GROUP BY 1 ORDER BY count(DISTINCT patient_id) DESC LIMIT 6"),
        "immunization": top("SELECT vaccine_code FROM gold.immunization GROUP BY 1 ORDER BY count(DISTINCT patient_id) DESC LIMIT 4"),
        "encounter": top("SELECT class_code FROM gold.encounter GROUP BY 1 ORDER BY count(*) DESC LIMIT 4"),
        "region": top("SELECT region FROM gold.patient GROUP BY 1 ORDER BY count(*) DESC"),
    }


@st.composite
def criterion(draw: st.DrawFn, codes: dict[str, list[str]], depth: int = 0) -> dict[str, Any]:
    kinds = ["demographics", "condition", "observation", "medication", "procedure", "immunization", "encounter"]
    if depth < 2:
        kinds += ["and", "or", "not"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("and", "or"):
        return {"kind": kind, "criteria": draw(st.lists(criterion(codes, depth + 1), min_size=1, max_size=3))}
    if kind == "not":
        return {"kind": "not", "criterion": draw(criterion(codes, depth + 1))}
    if kind == "demographics":
        found: dict[str, Any] = {"kind": "demographics"}
        if draw(st.booleans()):
            found["sex"] = draw(st.lists(st.sampled_from(["female", "male"]), min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            low = draw(st.integers(0, 90))
            found["age_min"] = low
            if draw(st.booleans()):
                found["age_max"] = draw(st.integers(low, 110))
        if draw(st.booleans()) and codes["region"]:
            found["regions"] = draw(st.lists(st.sampled_from(codes["region"]), min_size=1, max_size=3, unique=True))
        if draw(st.booleans()):
            found["deceased"] = draw(st.booleans())
        return found
    pool = codes[kind] or ["no-such-code"]
    if kind == "encounter":
        found = {"kind": "encounter", "class_codes": draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))}
    else:
        found = {"kind": kind, "codes": draw(st.lists(st.sampled_from([*pool, "no-such-code"]), min_size=1, max_size=3, unique=True))}
    if kind == "observation" and draw(st.booleans()):
        found["value"] = {"op": draw(st.sampled_from(["gt", "ge", "lt", "le"])), "value": draw(st.integers(0, 200))}
    if draw(st.integers(0, 3)) == 0:
        found["window"] = {"start": "2015-01-01", "end": "2024-12-31"}
    if draw(st.integers(0, 4)) == 0:
        found["min_count"] = draw(st.integers(1, 5))
    return found


@st.composite
def cohort(draw: st.DrawFn, codes: dict[str, list[str]]) -> dict[str, Any]:
    found: dict[str, Any] = {"criteria": draw(criterion(codes))}
    if draw(st.integers(0, 3)) == 0:
        found["index_date"] = draw(st.sampled_from(["2020-01-01", "2024-06-30"]))
    return found


@st.composite
def breakdown_arguments(draw: st.DrawFn, codes: dict[str, list[str]]) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "cohort": draw(cohort(codes)),
        "dimensions": draw(st.lists(st.sampled_from(["sex", "age_band", "region", "country", "source", "deceased"]),
                                    max_size=3, unique=True)),
    }
    if draw(st.booleans()) and codes["observation"]:
        arguments["measure"] = {"codes": [draw(st.sampled_from(codes["observation"]))],
                                "per_patient": draw(st.sampled_from(["latest", "mean", "min", "max"]))}
    if draw(st.booleans()):
        arguments["age_band_years"] = draw(st.integers(5, 30))
    return arguments
