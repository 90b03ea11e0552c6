"""The one enforcement point: every query the server runs passes through :func:`scope_query`.

Each reference to a gold view (``gold.condition``, ``condition``, ``lake.gold.condition``) is
replaced by a subquery that shows only what the client's :class:`~fhirlake.serving.scope.DataScope`
allows: rows of the allowed sources, rows of the cohort restriction's patients, the columns not
hidden, the generalised columns coarsened. The subquery adds ``__fl_pk``, the patient key the
server counts distinct patients with (a hash of source and patient id); it never leaves the
server. Any other table (silver, the ``fhirlake`` schema, a file, a table function) is refused,
so no code path can read gold, or anything else, around the scope.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from fhirlake.serving.catalog import PATIENT_COLUMN, SOURCE_COLUMN, GoldCatalog, ViewInfo
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.scope import DataScope, check_generalization

__all__ = ["PATIENT_KEY", "patient_key", "scope_query"]

PATIENT_KEY = "__fl_pk"
_CATALOG_NAME = "lake"


def patient_key() -> exp.Expr:
    """``hash(_source, patient_id)``: one patient, whatever table it is read from."""
    return exp.Anonymous(this="hash", expressions=[exp.column(SOURCE_COLUMN), exp.column(PATIENT_COLUMN)])


def scope_query(
    tree: exp.Query, scope: DataScope, catalog: GoldCatalog, restriction: exp.Query | None = None
) -> exp.Query:
    """``tree`` with every gold view replaced by its scoped subquery (a new tree).

    ``restriction`` is the cohort restriction of ``scope`` compiled to a query of ``__fl_pk``
    (unscoped: it is scoped here, with the same scope minus its cohort).
    """
    scoped = tree.copy()
    if restriction is not None:
        restriction = scope_query(restriction, replace(scope, cohort=None), catalog)
    ctes = {cte.alias_or_name for cte in scoped.find_all(exp.CTE)}
    for table in list(scoped.find_all(exp.Table)):
        if not table.args.get("db") and table.name in ctes and isinstance(table.this, exp.Identifier):
            continue
        view = _gold_view(table, scope, catalog)
        alias = table.alias or view.name
        subquery = exp.Subquery(this=_scoped_view(view, scope, restriction),
                                alias=exp.TableAlias(this=exp.to_identifier(alias)))
        table.replace(subquery)
    return scoped


def _gold_view(table: exp.Table, scope: DataScope, catalog: GoldCatalog) -> ViewInfo:
    """The gold view ``table`` names, or QueryRefused (a file, a function, another schema)."""
    if not isinstance(table.this, exp.Identifier):
        raise QueryRefused(f"only the gold views can be read, not {table.this.sql(dialect='duckdb')[:60]!r}")
    db, catalog_name = table.text("db").lower(), table.text("catalog").lower()
    if catalog_name not in ("", _CATALOG_NAME) or db not in ("", "gold"):
        raise QueryRefused(f"only the gold views can be read, not {table.sql(dialect='duckdb')[:60]!r}")
    view = catalog.view(table.name)
    if view is None or not scope.allows_view(view.name):
        raise QueryRefused(f"unknown view {table.name!r}: list_views shows the views you can query")
    if not view.has_patient:
        raise QueryRefused(f"view {view.name!r} has no patient key and cannot be queried")
    return view


def _scoped_view(view: ViewInfo, scope: DataScope, restriction: exp.Query | None) -> exp.Select:
    hidden = scope.hidden(view.name)
    generalized = scope.generalized(view.name)
    projections: list[exp.Expr] = []
    for column in view.columns:
        if column.name in hidden:
            continue
        ref = exp.column(column.name, quoted=True)
        kind = generalized.get(column.name)
        if kind is None:
            projections.append(ref)
        else:
            keep = exp.Anonymous(this="left", expressions=[exp.cast(ref, "VARCHAR"), exp.Literal.number(check_generalization(kind))])
            projections.append(exp.alias_(keep, column.name, quoted=True))
    projections.append(exp.alias_(patient_key(), PATIENT_KEY))
    select = exp.select(*projections).from_(exp.table_(view.name, db="gold"))
    if scope.sources is not None:
        sources = sorted(scope.sources)
        select = select.where(exp.column(SOURCE_COLUMN).isin(*[exp.Literal.string(s) for s in sources])
                              if sources else exp.false())
    if restriction is not None:
        select = select.where(exp.In(this=patient_key(), query=exp.Subquery(this=restriction.copy())))
    return select
