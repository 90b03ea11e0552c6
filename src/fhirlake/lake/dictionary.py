"""The data dictionary: every table and column researchers see, generated from the views.

``docs/data-dictionary.md`` is written by :func:`data_dictionary` from ``sql_on_fhir_views/``
(titles, descriptions, column names, FHIR types and descriptions) and from what the lake adds
to each gold view (the ``_source`` column and the derived columns of the catalog), with each
column's DuckDB type spelled as the catalog shows it. The text depends on nothing but those inputs (no
dates, no data), so CI can check that the committed file is current by generating it again::

    fhirlake view dictionary --out docs/data-dictionary.md
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from sqlglot import exp

from fhirlake.lake._catalog import DERIVED
from fhirlake.lake._duck import parquet
from fhirlake.lake._gold import HIDDEN_COLUMNS
from fhirlake.lake._silver import SILVER_COLUMNS, SILVER_DESCRIPTIONS
from fhirlake.sof.compiler import CompiledView, compile_view
from fhirlake.sof.library import view_files
from fhirlake.sof.model import ViewDefinition, load_view

__all__ = ["REGENERATE", "DictionaryColumn", "DictionaryTable", "data_dictionary", "dictionary_tables"]

REGENERATE = "python3 -m fhirlake view dictionary --out docs/data-dictionary.md"
_SHOWN_HIDDEN = "_source"  # the one carried column the catalog shows (``_resource_key``, ``_year`` are not)


@dataclass(frozen=True)
class DictionaryColumn:
    """One column of a gold table: its name, DuckDB type, FHIR type (or where it comes from)."""

    name: str
    sql_type: str
    origin: str
    description: str


@dataclass(frozen=True)
class DictionaryTable:
    """One gold table: the view it comes from and its columns in catalog order."""

    name: str
    file: str
    title: str
    resource: str
    description: str
    filters: tuple[str, ...]
    columns: tuple[DictionaryColumn, ...]


def dictionary_tables(folder: Path | None = None) -> list[DictionaryTable]:
    """The gold tables of the view library in ``folder`` (default: the project's), by name."""
    return [_table(path, load_view(path)) for path in view_files(folder)]


def _table(path: Path, view: ViewDefinition) -> DictionaryTable:
    compiled = compile_view(view)
    types = _view_types(compiled)
    columns = [
        DictionaryColumn(
            name=out.column.name, sql_type=types[out.column.name],
            origin=(out.column.type or "") + (" (collection)" if out.column.collection else ""),
            description=out.column.description or "",
        )
        for out in compiled.columns
    ]
    columns.append(DictionaryColumn(_SHOWN_HIDDEN, "VARCHAR", "added by the lake", HIDDEN_COLUMNS[_SHOWN_HIDDEN]))
    columns += _derived(path.stem, columns)
    return DictionaryTable(
        name=path.stem, file=path.name, title=view.title or path.stem, resource=view.resource,
        description=view.description or "", filters=tuple(w.path for w in view.where), columns=tuple(columns),
    )


def _view_types(compiled: CompiledView) -> dict[str, str]:
    """The DuckDB type of each column of the view, from its query over an empty typed relation."""
    empty = exp.select(*[exp.alias_(exp.cast(exp.null(), exp.DataType.build(t, dialect="duckdb")), n, quoted=True)
                         for n, t in compiled.read_columns.items()]).where(exp.false()).subquery()
    return _types(compiled.query(empty))


def _types(select: exp.Select) -> dict[str, str]:
    """The names and DuckDB types of ``select``'s columns, spelled as the catalog shows them."""
    with duckdb.connect() as con:
        relation = con.sql(select.sql(dialect="duckdb"))
        return {name: str(sql_type) for name, sql_type in zip(relation.columns, relation.types, strict=True)}


def _derived(table: str, columns: Sequence[DictionaryColumn]) -> list[DictionaryColumn]:
    """The catalog's derived columns of ``table``, typed by DuckDB over an empty typed relation."""
    present = {c.name: c.sql_type for c in columns}
    found = [d for d in DERIVED if d.table == table and set(d.needs) <= set(present)]
    if not found:
        return []
    reference = datetime(2000, 1, 1)
    select = exp.select(*[exp.alias_(d.expression(reference), d.name, quoted=True) for d in found])
    types = _types(select.from_(parquet([], {n: present[n] for d in found for n in d.needs})))
    return [DictionaryColumn(d.name, types[d.name], "derived in SQL from " + ", ".join(d.needs), d.description)
            for d in found]


def data_dictionary(folder: Path | None = None) -> str:
    """The data dictionary of the view library in ``folder``, as Markdown."""
    tables = dictionary_tables(folder)
    lines = [
        "# Data dictionary",
        "",
        f"<!-- Generated from sql_on_fhir_views/ by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Every gold table researchers query (`gold.<table>` in DuckDB, `lake.sql(...)` in Python), one",
        "per ViewDefinition in `sql_on_fhir_views/`, and every column with its DuckDB type. *FHIR type*",
        "is the column type the view declares (`(collection)`: a list); `_source` and the derived",
        "columns are added by the lake. Patient and resource keys are pseudonymous: join on them, never",
        "try to read them. Dates are text as FHIR writes them (`YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a",
        "date-time); `instant`s are `TIMESTAMP WITH TIME ZONE`, in UTC.",
        "",
        "| Table | Resource | Columns | What a row is |",
        "|---|---|---|---|",
    ]
    lines += [f"| [`gold.{t.name}`](#gold{t.name}) | {t.resource} | {len(t.columns)} | "
              f"{_cell(_first_sentence(t.description))} |" for t in tables]
    for table in tables:
        lines += ["", *_table_section(table)]
    lines += ["", *_silver_section()]
    return "\n".join(lines) + "\n"


def _table_section(table: DictionaryTable) -> list[str]:
    lines = [f"## gold.{table.name}", "", f"**{table.title}** — from `{table.resource}` resources, "
             f"view [`sql_on_fhir_views/{table.file}`](../sql_on_fhir_views/{table.file}).", ""]
    if table.description:
        lines += [table.description, ""]
    if table.filters:
        lines += ["Only resources where " + " and ".join(f"`{f}`" for f in table.filters) + ".", ""]
    lines += ["| Column | Type | FHIR type | Description |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | `{c.sql_type}` | {_cell(c.origin)} | {_cell(c.description)} |" for c in table.columns]
    return lines


def _silver_section() -> list[str]:
    lines = [
        "## Silver tables",
        "",
        "One table per resource type (`silver.Patient`, `silver.Observation`...): the pseudonymised",
        "resources as JSON, for questions no view answers yet (write a view for anything you use",
        "twice: see [adding a view](adding-a-view.md)).",
        "",
        "| Column | Type | Description |",
        "|---|---|---|",
    ]
    return lines + [f"| `{n}` | `{t}` | {_cell(SILVER_DESCRIPTIONS[n])} |" for n, t in _silver_columns()]


def _silver_columns() -> Iterable[tuple[str, str]]:
    """Silver's shown columns, with their types spelled as the catalog shows them."""
    return ((n, str(duckdb.sqltype(t))) for n, t in SILVER_COLUMNS.items() if n in SILVER_DESCRIPTIONS)


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + ("." if dot else "")


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (pipes escaped, one line)."""
    return " ".join(text.split()).replace("|", "\\|")
