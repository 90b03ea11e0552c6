"""The SQL the assets and checks run on the lake's catalog, built as sqlglot trees.

Every query takes the source as a named parameter (``$source``), so a partition only ever
looks at its own rows. Table names come from view file names and resource types, and are
quoted as identifiers by sqlglot, never pasted into strings. Gold's ``_resource_key`` is not
shown by the catalog's views, so the gold check reads the table's Parquet files (``$files``).

>>> gold_rows("patient")
'SELECT COUNT(*), COUNT(*) FILTER(WHERE "_source" = $source) FROM "gold"."patient"'
"""

from __future__ import annotations

from typing import Any

import sqlglot.expressions as exp

from fhirlake.lake import Lake

__all__ = ["fetch_one", "gold_against_silver", "gold_rows", "silver_tables", "table_files", "unresolved_patients"]

_SOURCE = exp.Placeholder(this="source")
_FILES = exp.Placeholder(this="files")


def _table(schema: str, name: str, alias: str | None = None) -> exp.Table:
    return exp.table_(exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True),
                      alias=alias)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=table)


def _count(condition: exp.Expression | None = None, *, distinct: exp.Expression | None = None) -> exp.Expression:
    inner: exp.Expression = exp.Star() if distinct is None else exp.Distinct(expressions=[distinct])
    count = exp.Count(this=inner)
    return exp.Filter(this=count, expression=exp.Where(this=condition)) if condition is not None else count


def _sql(tree: exp.Expression) -> str:
    return tree.sql(dialect="duckdb")


def gold_rows(view: str) -> str:
    """Rows of ``gold.<view>`` in all, and of the source."""
    source = exp.EQ(this=_col("_source"), expression=_SOURCE.copy())
    return _sql(exp.select(_count(), _count(source)).from_(_table("gold", view)))


def gold_against_silver(resource: str) -> str:
    """For the source: gold rows, distinct resource keys in gold (the Parquet ``$files`` of one
    gold table), gold keys missing from silver, and silver resources of the view's type."""
    in_silver = exp.Exists(this=exp.select("1").from_(_table("silver", resource, "s")).where(exp.and_(
        exp.EQ(this=_col("source", "s"), expression=_col("_source", "g")),
        exp.EQ(this=_col("resource_key", "s"), expression=_col("_resource_key", "g")))))
    silver_count = exp.Subquery(this=exp.select(_count()).from_(_table("silver", resource)).where(
        exp.EQ(this=_col("source"), expression=_SOURCE.copy())))
    tree = exp.select(_count(), _count(distinct=_col("_resource_key", "g")), _count(exp.Not(this=in_silver)),
                      silver_count).from_(exp.Table(
        this=exp.func("read_parquet", _FILES.copy()), alias=exp.TableAlias(this=exp.to_identifier("g")))).where(
        exp.EQ(this=_col("_source", "g"), expression=_SOURCE.copy()))
    return _sql(tree)


def unresolved_patients(resource: str) -> str:
    """For the source: resources of ``silver.<resource>`` with a patient key, and those whose
    patient is not in ``silver.Patient`` of the same source."""
    exists = exp.Exists(this=exp.select("1").from_(_table("silver", "Patient", "p")).where(exp.and_(
        exp.EQ(this=_col("source", "p"), expression=_col("source", "r")),
        exp.EQ(this=_col("resource_key", "p"), expression=_col("patient_key", "r")))))
    tree = exp.select(_count(), _count(exp.Not(this=exists))).from_(_table("silver", resource, "r")).where(
        exp.and_(exp.EQ(this=_col("source", "r"), expression=_SOURCE.copy()),
                 exp.Not(this=exp.Is(this=_col("patient_key", "r"), expression=exp.Null()))))
    return _sql(tree)


def silver_tables(lake: Lake) -> list[str]:
    """The silver tables (resource types) of the open lake."""
    tables = lake.tables()
    return sorted(str(n).split(".", 1)[1] for n in tables.filter(tables["layer"] == "silver")["name"])


def table_files(lake: Lake, name: str) -> list[str]:
    """The Parquet files of a table of the open lake's snapshot (``gold.patient``)."""
    tree = exp.select(_col("file")).from_(_table("fhirlake", "files")).where(
        exp.EQ(this=_col("name"), expression=exp.Placeholder(this="name")))
    return sorted(str(r[0]) for r in lake.connection.execute(_sql(tree), {"name": name}).fetchall())


def fetch_one(lake: Lake, sql: str, **params: Any) -> tuple[Any, ...]:
    """Run one of these queries with its named parameters; its single row."""
    row = lake.connection.execute(sql, params).fetchone()
    assert row is not None  # aggregates always return a row
    return tuple(row)
