"""The attack grammar and the allowed grammar of run_aggregate_sql, as plain generators (no server here).

Attacks are built as a forbidden *fragment* put in a *position* of an otherwise ordinary aggregate
query, so that the fragment alone is what the allow-list must catch. ``every_attack()`` lists each
fragment in each position it fits (the deterministic sweep); the hypothesis strategies in
``test_grammar.py`` draw from the same lists and add transformations (comments, keyword case,
quoted identifiers, whitespace) that must not turn a refusal into an answer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# An ordinary, allowed frame around every fragment: patient p, observation o, condition c, encounter e.
P = "patient p"
PO = "patient p JOIN observation o ON o.patient_id = p.patient_id"
PC = "patient p JOIN condition c ON c.patient_id = p.patient_id"


@dataclass(frozen=True)
class Attack:
    family: str
    sql: str

    def __str__(self) -> str:
        return f"[{self.family}] {self.sql}"


# ------------------------------------------------------------------------------------------ positions

def as_item(expr: str, frm: str = P) -> list[str]:
    """An expression (value or aggregate) as a SELECT item, alone and beside a group."""
    return [f"SELECT {expr} AS x FROM {frm}",
            f"SELECT p.gender, {expr} AS x FROM {frm} GROUP BY p.gender"]


def as_predicate(pred: str, frm: str = P) -> list[str]:
    """A predicate in WHERE, under AND/OR/NOT with an allowed comparison, and in an aggregate FILTER."""
    return [f"SELECT count(*) AS n FROM {frm} WHERE {pred}",
            f"SELECT p.gender, count(DISTINCT p.patient_id) AS n FROM {frm} WHERE p.gender = 'female' AND ({pred}) GROUP BY p.gender",
            f"SELECT count(*) AS n FROM {frm} WHERE p.gender = 'male' OR NOT ({pred})"]


def as_order(expr: str, frm: str = P) -> list[str]:
    return [f"SELECT p.gender, count(*) AS n FROM {frm} GROUP BY p.gender ORDER BY {expr}"]


def as_group(expr: str, frm: str = P) -> list[str]:
    return [f"SELECT count(*) AS n FROM {frm} GROUP BY {expr}",
            f"SELECT {expr} AS g, count(*) AS n FROM {frm} GROUP BY {expr}"]


def as_value(expr: str, frm: str = P) -> list[str]:
    """A scalar expression everywhere a value can go: item, WHERE comparison, aggregate argument, ORDER, GROUP."""
    return [*as_item(expr, frm), *as_predicate(f"{expr} = 1", frm), *as_predicate(f"{expr} IS NOT NULL", frm),
            f"SELECT sum({expr}) AS s FROM {frm}", f"SELECT avg({expr}) AS s FROM {frm}",
            *as_order(expr, frm), *as_group(expr, frm)]


# ------------------------------------------------------------------------------------------ families

def row_values() -> Iterator[Attack]:
    """A bare table alias, a struct or a row as a value (the median(p) whole-row leak)."""
    rows = ["p", "o", "p.*", "struct_pack(k := p.patient_id)", "struct_pack(a := p.gender, b := p.age)",
            "row(p.gender, p.age)", "{'k': p.age}", "(p.gender, p.age)", "[p.age, p.age]", "to_json(p)",
            "COLUMNS(*)", "COLUMNS('.*_id')", "p::VARCHAR", "struct_extract(p, 'patient_id')", "p.patient_id"]
    aggregates = ["median({})", "list({})", "max({})", "min({})", "first({})", "arg_max({}, p.age)", "mode({})",
                  "any_value({})", "quantile_cont({}, 0.5)", "count({})", "array_agg({})", "histogram({})",
                  "approx_quantile({}, 0.5)", "string_agg(CAST({} AS VARCHAR), ',')"]
    for row in rows:
        frm = PO if row.startswith("o") else P
        for aggregate in aggregates:
            for sql in as_item(aggregate.format(row), frm):
                yield Attack("row value", sql)
        yield Attack("row value", f"SELECT {row} FROM {frm}")
    for sql in as_predicate("(p.gender, p.age) = ('female', 40)"):
        yield Attack("row value", sql)
    yield Attack("row value", "SELECT count(*) AS n FROM patient p WHERE p = p")


SUBQUERIES = ["(SELECT count(*) FROM patient q WHERE q.deceased)", "(SELECT avg(q.age) FROM patient q)",
              "(SELECT max(q.patient_id) FROM patient q)", "(SELECT 1)", "(SELECT q.gender FROM patient q LIMIT 1)",
              "(SELECT count(*) FROM condition q WHERE q.code = '44054006')"]


def subqueries() -> Iterator[Attack]:
    """Subqueries anywhere: scalar, IN, EXISTS, ANY/ALL, in SELECT, FROM, WHERE, ORDER, GROUP, LIMIT, ON."""
    for sub in SUBQUERIES:
        for sql in [*as_item(sub), *as_predicate(f"{sub} = 7"), *as_predicate(f"p.age > {sub}"), *as_order(sub),
                    f"SELECT sum({sub}) AS s FROM {P}", f"SELECT count(*) AS n FROM {P} LIMIT {sub}",
                    f"SELECT count(*) AS n FROM patient p JOIN condition c ON c.patient_id = p.patient_id AND {sub} = 7"]:
            yield Attack("subquery", sql)
    for pred in ["p.gender IN (SELECT q.gender FROM patient q WHERE q.region = 'CT')",
                 "p.patient_id IN (SELECT c.patient_id FROM condition c WHERE c.code = '44054006')",
                 "p.gender NOT IN (SELECT q.gender FROM patient q)",
                 "EXISTS (SELECT 1 FROM patient q WHERE q.patient_id >= '8')",
                 "NOT EXISTS (SELECT 1 FROM patient q WHERE q.deceased)",
                 "p.age = ANY (SELECT q.age FROM patient q)", "p.age > ALL (SELECT q.age FROM patient q WHERE q.deceased)",
                 "p.gender IN (SELECT content FROM read_text('/etc/hostname'))"]:
        for sql in as_predicate(pred):
            yield Attack("subquery", sql)
    for frm in ["(SELECT * FROM patient) p", "(SELECT gender, age, patient_id FROM patient) p",
                "(SELECT p.* FROM patient p WHERE p.region = 'CT') p",
                "patient p, LATERAL (SELECT count(*) AS k FROM condition c WHERE c.patient_id = p.patient_id) l",
                "patient p JOIN (SELECT patient_id FROM condition) c ON c.patient_id = p.patient_id"]:
        yield Attack("subquery", f"SELECT count(*) AS n FROM {frm}")
        yield Attack("subquery", f"SELECT p.gender, count(*) AS n FROM {frm} GROUP BY p.gender")
    yield Attack("subquery", f"SELECT count(*) AS n FROM {P} GROUP BY (SELECT 1)")


ORACLE_VALUES = [
    "CASE WHEN p.region = 'CT' THEN 1 ELSE 0 END", "IF(p.region = 'CT', 1, 0)", "iif(p.region = 'CT', 1, 0)",
    "CAST(p.region AS INTEGER)", "TRY_CAST(p.region AS INTEGER)", "p.region::INTEGER", "CAST(p.age AS VARCHAR)",
    "1 / (p.age - 40)", "p.age / 0", "p.age % 2", "p.age + 1", "p.age * 2", "-p.age", "p.age // 2",
    "length(p.region)", "substr(p.gender, 1, 1)", "upper(p.gender)", "p.region || 'x'", "concat(p.gender, 'x')",
    "left(p.region, 1)", "lower(p.gender)", "strpos(p.region, 'C')", "replace(p.gender, 'f', 'm')", "hash(p.gender)",
    "md5(p.gender)", "coalesce(p.region, 'x')", "nullif(p.region, 'CT')", "greatest(p.age, 40)", "least(p.age, 40)",
    "abs(p.age)", "round(p.age, -1)", "random()", "now()", "current_date", "getenv('HOME')", "error('x')",
    "regexp_extract(p.region, '^C')", "date_diff('day', DATE '2000-01-01', DATE '2001-01-01')", "version()",
    "current_setting('memory_limit')", "len(p.region)", "epoch(now())", "uuid()", "ascii(p.region)",
]

ORACLE_PREDICATES = [
    "regexp_matches(p.region, '^C')", "p.region LIKE 'C%'", "p.region ILIKE 'c%'", "p.region SIMILAR TO 'C.*'",
    "p.region GLOB 'C*'", "p.region ~ '^C'", "starts_with(p.region, 'C')", "contains(p.region, 'C')",
    "p.region NOT LIKE 'C%'",
    # comparisons between columns
    "p.age > p.birth_year", "p.gender = p.region", "p.gender <> p.marital_status", "p.age = p.age",
    "p.age BETWEEN p.birth_year AND 3000", "p.gender IN (p.region, 'female')", "p.region IN (p.gender)",
    # a text column against a number (a run-time conversion error on some rows only) and other type mismatches
    "p.region = 5", "p.gender > 3", "p.gender = 1", "p.marital_status < 0", "p.region IN (1, 2)",
    "p.age = 'forty'", "p.deceased = 'yes'", "p.deceased = 1", "p.gender = DATE '2020-01-01'",
    "p.region BETWEEN 1 AND 5",
    # literals only, casts and expressions in the literal position
    "1 = 1", "TRUE", "'a' = 'a'", "NOT FALSE", "NULL IS NULL", "p.gender = 'fem' || 'ale'",
    "p.gender = CAST('female' AS VARCHAR)", "p.gender = 'female'::VARCHAR", "p.age > 40 + 0", "p.age > (40)::INTEGER",
    "p.gender = lower('FEMALE')", "p.gender = 'female' COLLATE nocase", "p.gender IS DISTINCT FROM 'female'",
    "p.gender = ANY(['female'])", "list_contains(['CT'], p.region)", "p.age IN (SELECT 40)",
    # a predicate that would be slow only when it holds (a timing oracle)
    "CASE WHEN p.region = 'CT' THEN (SELECT count(*) FROM observation a, observation b) ELSE 0 END = 0",
]


def oracles() -> Iterator[Attack]:
    """CASE/IF, CAST/TRY_CAST, arithmetic, string and regexp functions, column-to-column and type-mismatched comparisons."""
    for expr in ORACLE_VALUES:
        for sql in as_value(expr):
            yield Attack("oracle", sql)
    for pred in ORACLE_PREDICATES:
        for sql in as_predicate(pred):
            yield Attack("oracle", sql)
    yield Attack("oracle", "SELECT count(*) AS n FROM patient p JOIN observation o ON o.patient_id = p.patient_id "
                           "WHERE o.value_quantity > p.age")
    yield Attack("oracle", "SELECT sum(CASE WHEN p.region = 'CT' THEN p.age END) AS s FROM patient p")
    yield Attack("oracle", "SELECT count(*) FILTER (WHERE p.region = 'CT') AS n FROM patient p")
    yield Attack("oracle", "SELECT sum(p.age * 2) AS s FROM patient p")
    yield Attack("oracle", "SELECT avg(p.age + 0) AS s FROM patient p")
    yield Attack("oracle", "SELECT count(*) AS n FROM patient p WHERE year(p.birth_date) = 1990")
    yield Attack("oracle", "SELECT day(c.onset_datetime) AS d, count(*) AS n FROM condition c GROUP BY day(c.onset_datetime)")
    yield Attack("oracle", "SELECT date_trunc('day', c.onset_datetime) AS d, count(*) AS n FROM condition c GROUP BY 1")
    yield Attack("oracle", "SELECT strftime(c.recorded_date, '%d') AS d, count(*) AS n FROM condition c GROUP BY 1")


def having() -> Iterator[Attack]:
    for cond in ["count(*) > 0", "count(*) = 1", "count(*) < 11", "sum(p.age) > 0", "p.gender = 'female'", "TRUE"]:
        yield Attack("having", f"SELECT p.region, p.gender, count(*) AS n FROM patient p GROUP BY p.region, p.gender HAVING {cond}")
        yield Attack("having", f"SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender HAVING {cond}")


def with_clauses() -> Iterator[Attack]:
    yield Attack("with", "WITH x AS (SELECT gender FROM patient) SELECT count(*) AS n FROM x")
    yield Attack("with", "WITH x AS (SELECT gender FROM patient) SELECT count(*) AS n FROM patient")
    yield Attack("with", "WITH x AS MATERIALIZED (SELECT * FROM patient) SELECT count(*) AS n FROM x")
    yield Attack("with", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000000) "
                         "SELECT count(*) AS n FROM r")
    yield Attack("with", "WITH patient AS (SELECT * FROM silver.Patient) SELECT count(*) AS n FROM patient")


def set_operations() -> Iterator[Attack]:
    a = "SELECT count(*) AS n FROM patient p WHERE p.gender = 'female'"
    b = "SELECT count(*) AS n FROM patient p WHERE p.region = 'CT'"
    for op in ["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "EXCEPT ALL", "INTERSECT ALL", "UNION BY NAME"]:
        yield Attack("set operation", f"{a} {op} {b}")
        yield Attack("set operation", f"({a}) {op} ({b})")


def windows() -> Iterator[Attack]:
    for w in ["count(*) OVER ()", "row_number() OVER (ORDER BY p.age)", "sum(p.age) OVER (PARTITION BY p.gender)",
              "lag(p.age) OVER (ORDER BY p.age)", "first_value(p.age) OVER ()", "ntile(150) OVER (ORDER BY p.age)",
              "rank() OVER (ORDER BY p.age)", "count(*) OVER (PARTITION BY p.region)"]:
        yield Attack("window", f"SELECT p.gender, {w} AS w FROM patient p")
        yield Attack("window", f"SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender ORDER BY {w}")
    yield Attack("window", "SELECT p.gender, count(*) AS n FROM patient p GROUP BY p.gender QUALIFY row_number() OVER () = 1")
    yield Attack("window", "SELECT rank() OVER w AS r FROM patient p WINDOW w AS (ORDER BY p.age)")


def forbidden_aggregates() -> Iterator[Attack]:
    """min/max/arg_max/first/list/string_agg..., DISTINCT/FILTER/ORDER inside, extreme quantiles."""
    for m, frm in [("p.age", P), ("o.value_quantity", PO)]:
        for agg in ["min({m})", "max({m})", "arg_max(p.gender, {m})", "arg_min(p.gender, {m})", "first({m})",
                    "last({m})", "list({m})", "array_agg({m})", "string_agg(CAST({m} AS VARCHAR), ',')", "mode({m})",
                    "any_value({m})", "histogram({m})", "product({m})", "approx_count_distinct({m})",
                    "count(DISTINCT {m})", "sum(DISTINCT {m})", "avg(DISTINCT {m})", "quantile_cont({m}, 0.99)",
                    "quantile_cont({m}, 0.01)", "quantile_cont({m}, 1)", "quantile_cont({m}, 0)",
                    "quantile_cont({m}, 0.96)", "quantile_cont({m}, 0.04)", "quantile_disc({m}, 0.5)",
                    "quantile_cont({m}, [0.25, 0.5])", "quantile_cont({m}, 0.5 + 0.4)", "quantile_cont({m}, p.age)",
                    "median({m}) FILTER (WHERE p.region = 'CT')", "sum({m} ORDER BY {m})", "kurtosis({m})",
                    "skewness({m})", "entropy({m})", "corr({m}, p.birth_year)", "covar_pop({m}, p.birth_year)",
                    "regr_slope({m}, p.birth_year)", "reservoir_quantile({m}, 0.5)", "approx_quantile({m}, 0.5)",
                    "mad({m})", "bit_or(CAST({m} AS INTEGER))", "max_by(p.gender, {m})", "median(median({m}))",
                    "sum(count(*))"]:
            for sql in as_item(agg.format(m=m), frm):
                yield Attack("aggregate", sql)
    yield Attack("aggregate", "SELECT count(*) FILTER (WHERE p.region = 'CT') AS n FROM patient p")
    yield Attack("aggregate", "SELECT string_agg(p.gender, ',') AS s FROM patient p")
    yield Attack("aggregate", "SELECT bool_or(p.deceased) AS b FROM patient p")
    yield Attack("aggregate", "SELECT count(DISTINCT p.gender) AS d FROM patient p")
    yield Attack("aggregate", "SELECT count(DISTINCT p.region) AS d FROM patient p")
    yield Attack("aggregate", "SELECT p.gender, count(*) AS n FROM patient p GROUP BY ROLLUP (p.gender)")
    yield Attack("aggregate", "SELECT p.gender, p.deceased, count(*) AS n FROM patient p GROUP BY CUBE (p.gender, p.deceased)")
    yield Attack("aggregate", "SELECT p.gender, count(*) AS n FROM patient p GROUP BY GROUPING SETS ((p.gender), ())")


def keys(patient_id: str = "00000000-0000-0000-0000-000000000000") -> Iterator[Attack]:
    """Keys in any position but count(DISTINCT patient_id) and the join condition."""
    for key, frm in [("p.patient_id", P), ("o.observation_id", PO), ("o.encounter_id", PO), ("c.condition_id", PC),
                     ("p.managing_organization_id", P), ("p.__fl_pk", P), ("__fl_pk", P), ('p."patient_id"', P),
                     ('p."PATIENT_ID"', P), ("PATIENT_ID", P), ("c.encounter_id", PC)]:
        yield Attack("key", f"SELECT {key} FROM {frm}")
        yield Attack("key", f"SELECT {key}, count(*) AS n FROM {frm} GROUP BY {key}")
        yield Attack("key", f"SELECT count(*) AS n FROM {frm} GROUP BY {key}")
        for pred in [f"{key} = '{patient_id}'", f"{key} >= '8'", f"{key} <> '{patient_id}'", f"{key} IN ('{patient_id}')",
                     f"{key} BETWEEN 'a' AND 'b'", f"{key} IS NULL", f"{key} IS NOT NULL", f"{key} LIKE 'a%'",
                     f"NOT {key} = '{patient_id}'"]:
            for sql in as_predicate(pred, frm):
                yield Attack("key", sql)
        if key in ("p.patient_id", "o.encounter_id", "c.condition_id", 'p."patient_id"'):
            for expr in [f"left({key}, 1)", f"length({key})", f"hash({key}) % 2", f"lower({key})"]:
                for sql in as_value(expr, frm):
                    yield Attack("key", sql)
        for agg in [f"count({key})", f"count(DISTINCT left({key}, 8))", f"sum(length({key}))", f"median(hash({key}))",
                    f"count(DISTINCT {key} || '')", f"count(DISTINCT lower({key}))", f"min({key})", f"max({key})",
                    f"approx_count_distinct({key})"]:
            for sql in as_item(agg, frm):
                yield Attack("key", sql)
        yield Attack("key", f"SELECT p.gender, count(*) AS n FROM {frm} GROUP BY p.gender ORDER BY any_value({key})")
        yield Attack("key", f"SELECT p.gender, count(*) AS n FROM {frm} GROUP BY p.gender ORDER BY {key}")
    for key in ["o.observation_id", "o.encounter_id"]:
        yield Attack("key", f"SELECT count(DISTINCT {key}) AS n FROM {PO}")


def star_and_distinct() -> Iterator[Attack]:
    for sql in ["SELECT * FROM patient", "SELECT p.* FROM patient p", "SELECT COLUMNS(*) FROM patient",
                "SELECT * EXCLUDE (patient_id) FROM patient", "SELECT count(*), * FROM patient",
                "SELECT DISTINCT gender FROM patient", "SELECT DISTINCT ON (gender) gender, age FROM patient",
                "SELECT DISTINCT gender, count(*) AS n FROM patient GROUP BY gender", "FROM patient",
                "FROM patient SELECT *", "SELECT #1 FROM patient", "SELECT * FROM patient LIMIT 1",
                "SELECT p.gender, count(*) AS n, * FROM patient p GROUP BY ALL", "TABLE patient",
                "VALUES (1)", "SELECT 1", "SELECT count(*) AS n",
                "SELECT gender, count(*) AS n FROM patient GROUP BY gender LIMIT 5 OFFSET 1"]:
        yield Attack("star/distinct", sql)


def joins() -> Iterator[Attack]:
    base = "SELECT p.gender, count(*) AS n FROM {} GROUP BY p.gender"
    for frm in ["patient p CROSS JOIN condition c", "patient p, condition c", "patient p, condition c WHERE c.patient_id = p.patient_id",
                "patient p LEFT JOIN condition c ON c.patient_id = p.patient_id",
                "patient p RIGHT JOIN condition c ON c.patient_id = p.patient_id",
                "patient p FULL OUTER JOIN condition c ON c.patient_id = p.patient_id",
                "patient p LEFT OUTER JOIN condition c ON c.patient_id = p.patient_id",
                "patient p SEMI JOIN condition c ON c.patient_id = p.patient_id",
                "patient p ANTI JOIN condition c ON c.patient_id = p.patient_id",
                "patient p ASOF JOIN observation o ON o.patient_id = p.patient_id AND p.birth_year <= o.value_quantity",
                "patient p POSITIONAL JOIN condition c", "patient p NATURAL JOIN condition c",
                "patient p JOIN condition c ON p.gender = c.code", "patient p JOIN condition c ON c.patient_id <> p.patient_id",
                "patient p JOIN condition c ON c.patient_id > p.patient_id", "patient p JOIN condition c ON c.encounter_id = p.patient_id",
                "patient p JOIN condition c ON c.patient_id = p.patient_id AND c.code = '44054006'",
                "patient p JOIN condition c ON c.patient_id = p.patient_id OR TRUE", "patient p JOIN condition c ON TRUE",
                "patient p JOIN condition c ON 1 = 1", "patient p JOIN condition c USING (code)",
                "patient p JOIN condition c ON lower(c.patient_id) = lower(p.patient_id)",
                "patient p JOIN condition c ON c.patient_id = p.patient_id || ''",
                "patient p JOIN condition c ON c.patient_id = p.managing_organization_id",
                "patient p JOIN encounter e ON e.patient_id = p.patient_id JOIN condition c ON c.encounter_id = e.encounter_id",
                "patient p JOIN encounter e ON e.patient_id = p.patient_id JOIN condition c USING (encounter_id)",
                "patient p JOIN encounter e ON e.patient_id = p.patient_id JOIN condition c USING (patient_id, encounter_id)",
                "patient p JOIN condition c", "patient p INNER JOIN LATERAL (SELECT 1 AS x) l ON TRUE",
                "patient p JOIN condition c ON c.patient_id = p.patient_id AND p.region = 'CT'",
                "patient p JOIN condition c ON (c.patient_id, c.code) = (p.patient_id, '44054006')"]:
        yield Attack("join", base.format(frm))


def readers(lake: str = "/nonexistent/lake") -> Iterator[Attack]:
    """Files, table functions and everything in FROM that is not a gold view the client may see."""
    for source in ["read_csv('/etc/passwd')", "read_csv_auto('/etc/hostname')", f"read_parquet('{lake}/gold/patient/**/*.parquet')",
                   "read_json_auto('/etc/x.json')", "read_text('/etc/hostname')", "read_blob('/etc/hostname')",
                   "glob('/etc/*')", "'/etc/passwd'", f"'{lake}/gold/patient/part-0.parquet'", '"data.csv"',
                   "parquet_scan('/tmp/x.parquet')", f"delta_scan('{lake}/gold/patient')", "sniff_csv('/etc/passwd')",
                   "duckdb_settings()", "duckdb_tables()", "duckdb_columns()", "information_schema.tables",
                   "pg_catalog.pg_class", "silver.Patient", "silver.patient", "fhirlake.files", "range(1000000)",
                   "generate_series(1, 10)", "query_table('patient')", "query('SELECT * FROM patient')",
                   "unnest([1, 2, 3])", "(VALUES (1), (2)) v(x)", "read_ndjson('/etc/x')", "sqlite_scan('/tmp/x', 'y')",
                   "main.patient_raw", "system.main.duckdb_tables()", "gold.nosuchview", "nosuchview",
                   "patient TABLESAMPLE 10%", "patient USING SAMPLE 1"]:
        yield Attack("reader", f"SELECT count(*) AS n FROM {source}")
    yield Attack("reader", "SELECT count(*) AS n FROM patient p JOIN read_csv('/etc/passwd') x ON TRUE")
    yield Attack("reader", "SELECT count(*) AS n FROM patient p WHERE p.region = getenv('HOME')")


def statements() -> Iterator[Attack]:
    for sql in ["ATTACH '/tmp/other.duckdb' AS other", "DETACH gold", "COPY (SELECT gender FROM patient) TO '/tmp/out.csv'",
                "COPY patient TO '/tmp/out.parquet'", "EXPORT DATABASE '/tmp/export'", "IMPORT DATABASE '/tmp/export'",
                "PRAGMA database_list", "PRAGMA table_info('patient')", "SET memory_limit = '100GB'",
                "SET enable_external_access = true", "RESET memory_limit", "INSTALL httpfs", "LOAD httpfs",
                "CALL pragma_version()", "CREATE TABLE x AS SELECT * FROM patient", "CREATE VIEW v AS SELECT 1",
                "CREATE MACRO m(x) AS x", "CREATE SECRET s (TYPE s3)", "INSERT INTO patient VALUES (1)",
                "UPDATE patient SET gender = 'x'", "DELETE FROM patient", "DROP VIEW patient", "ALTER VIEW patient RENAME TO q",
                "USE silver", "CHECKPOINT", "VACUUM", "EXPLAIN SELECT count(*) FROM patient",
                "EXPLAIN ANALYZE SELECT count(*) FROM patient", "DESCRIBE patient", "SHOW TABLES", "SUMMARIZE patient",
                "PIVOT patient ON gender USING count(*)", "UNPIVOT patient ON gender INTO NAME k VALUE v",
                "BEGIN TRANSACTION", "SELECT count(*) AS n FROM patient; SELECT count(*) AS n FROM condition",
                "SELECT count(*) AS n FROM patient; DROP VIEW patient", "SELECT count(*) AS n FROM patient; ATTACH 'x' AS y",
                "SELECT count(*) AS n FROM patient /* ok */; COPY patient TO '/tmp/x.csv'",
                "SELECT count(*) AS n FROM patient -- x\n; SET threads = 64",
                "SELEC count(*) FROM patient", " ", ";", "/* only a comment */", "-- only a comment"]:
        yield Attack("statement", sql)


def unicode_and_quoting(patient_id: str = "00000000-0000-0000-0000-000000000000") -> Iterator[Attack]:
    for sql in [f"SELECT count(*) AS n FROM patient p WHERE p.\"patient_id\" = '{patient_id}'",
                "SELECT \"PATIENT_ID\", count(*) AS n FROM patient GROUP BY 1",
                "SELECT `patient_id` FROM patient",
                "SELECT count(*) AS n FROM patient p WHERE p.p\u0430tient_id = 'x'",  # Cyrillic a
                "SELECT count(*) AS n FROM patient p WHERE p.pat\u200bient_id = 'x'",  # zero-width space
                "SELECT count(*) AS n FROM patient\uff1b DROP VIEW patient",  # fullwidth semicolon
                "SELECT count(*) AS n FROM patient p WHERE U&\"p\\0061tient_id\" = 'x'",
                "SELECT count(*) AS n FROM patient p WHERE p.region = 'CT' OR 1=1 --'",
                "SELECT count(*) AS n FROM patient p WHERE p.gender = 'female' /* ' OR (SELECT 1) = 1 -- */ OR (SELECT 1) = 1",
                "SELECT count(*) AS n FROM \"patient\" p, \"condition\" c",
                "SELECT median(/**/p) AS x FROM patient p", "SELECT median(p--\n) AS x FROM patient p",
                "SELECT count(*) AS n FROM patient p WHERE p.gender = E'\\x66emale' OR 1 = 1",
                "SELECT count(*) AS n FROM patient p WHERE p.gender = $$female$$ OR (SELECT 1) = 1",
                "SELECT \"p\".\"patient_id\" FROM patient \"p\"", "SELECT p . patient_id FROM patient p",
                "SELECT count(*) AS n FROM patient p WHERE p.gender\u00a0= 'female' OR 1 = 1",
                "sElEcT MeDiAn(P) aS x FrOm PaTiEnT p", "SELECT count(*) AS n FROM PATIENT P WHERE P.PATIENT_ID > '8'"]:
        yield Attack("unicode/quoting", sql)


def deep(depth: int) -> list[Attack]:
    """Deeply nested expressions (beyond the documented parenthesis depth of 32)."""
    return [Attack("deep", "SELECT count(*) AS n FROM patient p WHERE " + "(" * depth + "p.gender = 'female'" + ")" * depth),
            Attack("deep", "SELECT count(*) AS n FROM patient p WHERE " + "NOT (" * depth + "p.gender = 'female'" + ")" * depth),
            Attack("deep", "SELECT " + "abs(" * depth + "p.age" + ")" * depth + " AS x FROM patient p"),
            Attack("deep", "SELECT count(*) AS n FROM patient p WHERE p.age > " + "(SELECT " * depth + "1" + ")" * depth)]


def every_attack(patient_id: str, lake: str) -> list[Attack]:
    attacks = [*row_values(), *subqueries(), *oracles(), *having(), *with_clauses(), *set_operations(), *windows(),
               *forbidden_aggregates(), *keys(patient_id), *star_and_distinct(), *joins(), *readers(lake), *statements(),
               *unicode_and_quoting(patient_id), *deep(33), *deep(100)]
    seen: set[str] = set()
    unique = []
    for attack in attacks:
        if attack.sql not in seen:
            seen.add(attack.sql)
            unique.append(attack)
    return unique


# ------------------------------------------------------------------------------------------ transformations

KEYWORDS = ["SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "JOIN", "AND", "OR", "NOT", "AS", "ON", "LIMIT", "HAVING",
            "UNION", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "IN", "EXISTS", "DISTINCT"]


def split_outside_quotes(sql: str) -> list[tuple[bool, str]]:
    """[(quoted, text)] pieces: string literals and quoted identifiers are kept whole."""
    return [(bool(m.group(1)), m.group(0)) for m in re.finditer(r"('(?:[^']|'')*'|\"[^\"]*\")|[^'\"]+", sql)]


def transform(sql: str, how: str, rng: random.Random) -> str:
    """A rewriting that keeps what the query asks: comments, keyword case, spacing, quoted identifiers."""
    pieces = split_outside_quotes(sql)
    out = []
    for quoted, text in pieces:
        if quoted:
            out.append(text)
            continue
        if how == "block comments":
            text = re.sub(r" ", lambda _: rng.choice([" ", "/**/", " /* x */ ", "/*;*/"]), text)
        elif how == "line comments":
            text = re.sub(r" ", lambda _: rng.choice([" ", " -- c\n", "\n"]), text)
        elif how == "keyword case":
            for keyword in KEYWORDS:
                text = re.sub(rf"\b{keyword}\b", lambda m: "".join(rng.choice([c.lower(), c.upper()]) for c in m.group(0)), text)
        elif how == "whitespace":
            text = re.sub(r" ", lambda _: rng.choice([" ", "  ", "\t", "\n", " \r\n "]), text)
        elif how == "quoted identifiers":
            text = re.sub(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b", lambda m: f'{m.group(1)}."{m.group(2)}"', text)
        elif how == "gold schema":
            text = re.sub(r"\b(FROM|JOIN) (patient|observation|condition|encounter)\b", r"\1 gold.\2", text)
        out.append(text)
    return "".join(out)


TRANSFORMS = ["none", "block comments", "line comments", "keyword case", "whitespace", "quoted identifiers", "gold schema"]


# ------------------------------------------------------------------------------------------ the allowed grammar

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
DECIMAL = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")


def literal(kind: str, value: object) -> str:
    """A SQL literal of the column's DuckDB type."""
    upper = kind.upper()
    if upper == "BOOLEAN":
        return "TRUE" if value else "FALSE"
    if upper.startswith(NUMERIC):
        return str(int(float(str(value))))
    if upper.startswith(DECIMAL):
        return repr(float(str(value)))
    return "'" + str(value).replace("'", "''") + "'"


def scalar_type(kind: str) -> bool:
    upper = kind.upper()
    return not upper.endswith("]") and (upper in ("VARCHAR", "BOOLEAN") or upper.startswith(NUMERIC + DECIMAL))


QUANTILES = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]

Draw = Callable[..., object]
